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
from aucseg.errors import InputError, Interrupted, NonFiniteError

# name -> (module, one-line description). Each module defines add_arguments() and run().
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("aucseg.commands.train", "train a model from a YAML config (torchrun-aware)"),
    "test": ("aucseg.commands.test", "evaluate a checkpoint: mIoU, per-class and group reports"),
    "predict": ("aucseg.commands.predict", "write colour masks and overlays for images"),
    "compare": (
        "aucseg.commands.compare",
        "mean ± std of result files per method label (table, JSON, PNG)",
    ),
    "sweep": ("aucseg.commands.sweep", "train and test configs x seeds, then compare them"),
    "configs": ("aucseg.commands.configs", "list the shipped configs"),
    "config": ("aucseg.commands.config", "print a config resolved with every default"),
    "models": ("aucseg.commands.models", "list the registered models with parameter counts"),
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


def _one_line(exc: BaseException) -> str:
    """The user-facing line of ``exc``; an error re-raised from a DataLoader worker is
    unwrapped to the original message (the worker's traceback is dropped)."""
    text = str(exc)
    if "Original Traceback" in text:
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else text
        text = last.split(": ", 1)[1] if ": " in last and not last.startswith(" ") else last
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return " ".join(text.split())


def _resume_hint(exc: Interrupted) -> str:
    work_dir = exc.checkpoint.parent.parent if exc.checkpoint else None
    where = f"--work-dir {work_dir} " if work_dir else ""
    return f"interrupted at iteration {exc.iteration}; resume with: aucseg train {where}--resume"


def _worker_error(exc: BaseException) -> bool:
    return "Original Traceback" in str(exc) and any(
        f"{name}:" in str(exc) for name in ("InputError", "CheckpointError", "FileNotFoundError")
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aucseg`` console script. Returns the process exit code.

    The one place that turns errors into exit codes: bad input (:class:`InputError`, a missing
    file, an OS error such as a full disk) prints ``aucseg COMMAND: error: ...`` and returns 2;
    a diverged run returns 1; SIGINT/SIGTERM return 130/143 with the resume command. Anything
    else is a bug and keeps its traceback. ``AUCSEG_DEBUG=1`` shows every traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv:
        top.print_help()
        return 2
    ns = top.parse_args(argv[:1] if argv[0] not in ("-h", "--help", "--version") else argv)
    parser, module = build_command_parser(ns.command)
    args = parser.parse_args(argv[1:])
    debug = bool(os.environ.get("AUCSEG_DEBUG"))
    try:
        return int(module.run(args) or 0)
    except Interrupted as exc:
        print(f"aucseg {ns.command}: {_resume_hint(exc)}", file=sys.stderr)
        return 128 + exc.signum
    except NonFiniteError as exc:
        if debug:
            raise
        print(f"aucseg {ns.command}: {exc}", file=sys.stderr)
        return 1
    except (InputError, OSError) as exc:
        if debug:
            raise
        print(f"aucseg {ns.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if debug or not _worker_error(exc):
            raise
        print(f"aucseg {ns.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
