"""Allow ``python -m aucseg`` (used by ``torchrun -m aucseg``)."""

import sys

from aucseg.cli import main

if __name__ == "__main__":
    sys.exit(main())
