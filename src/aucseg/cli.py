"""The ``aucseg`` command line: a thin dispatcher over :mod:`aucseg.commands`.

Sub-command modules are imported only when selected, so ``aucseg --help`` is instant and a
command's heavy dependencies load only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from aucseg import __version__

# name -> (module, one-line description). Each module defines add_arguments() and run().
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("aucseg.commands.train", "train a model from a YAML config (torchrun-aware)"),
    "test": ("aucseg.commands.test", "evaluate a checkpoint: mIoU, per-class and group reports"),
    "predict": ("aucseg.commands.predict", "write colour masks and overlays for images"),
    "compare": ("aucseg.commands.compare", "compare two metric files side by side (table + PNG)"),
    "demo": ("aucseg.commands.demo", "CE vs AUCSeg on generated long-tail scenes, with a report"),
    "convert": ("aucseg.commands.convert", "rewrite a checkpoint as a clean aucseg file"),
    "convert-labels": (
        "aucseg.commands.convert_labels",
        "convert raw Cityscapes / COCO-Stuff labels to train ids",
    ),
    "stats": ("aucseg.commands.stats", "per-class pixel statistics and head/middle/tail split"),
    "make-synthetic": (
        "aucseg.commands.make_synthetic",
        "generate a small long-tailed scene-parsing dataset on disk",
    ),
}


def _top_parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<16}{desc}" for name, (_, desc) in COMMANDS.items()]
    parser = argparse.ArgumentParser(
        prog="aucseg",
        description="Long-tail semantic segmentation with AUC losses and the T-Memory Bank.",
        epilog="commands:\n" + "\n".join(lines) + "\n\nRun 'aucseg COMMAND --help' for details.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aucseg {__version__}")
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="see below")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def build_command_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    """Return the argument parser of sub-command ``name`` and its module."""
    module_name, description = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"aucseg {name}", description=description)
    module.add_arguments(parser)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aucseg`` console script. Returns the process exit code.

    A command that raises ``ValueError``/``TypeError``/``FileNotFoundError`` (bad input) prints
    ``aucseg COMMAND: error: ...`` on stderr and returns 2; set ``AUCSEG_DEBUG=1`` for the
    traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv:
        top.print_help()
        return 2
    ns = top.parse_args(argv[:1] if argv[0] not in ("-h", "--help", "--version") else argv)
    parser, module = build_command_parser(ns.command)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        # Bad input (files, values, config) is reported as one line; AUCSEG_DEBUG=1 re-raises.
        if os.environ.get("AUCSEG_DEBUG"):
            raise
        print(f"aucseg {ns.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
