"""Sub-commands of the ``aucseg`` command line.

Each module defines ``add_arguments(parser)`` and ``run(args) -> int``; the registry of names,
modules and one-line descriptions lives in :mod:`aucseg.cli`. Commands parse arguments and call
library functions; they hold no training or evaluation logic of their own.
"""
