"""Argument helpers shared by the train/test/predict commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aucseg.config import Config, load_config


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """``--set key=value [key=value ...]`` (repeatable) for dotted config overrides."""
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        nargs="+",
        action="extend",
        default=[],
        help="override config values, e.g. --set data.root=/data/ade optimizer.lr=1e-4 "
        "(values are YAML: [512,512], null, true; list items by index: loss.terms.0.weight=4)",
    )


def fail(command: str, exc: BaseException) -> int:
    """Print ``aucseg COMMAND: error: ...`` on stderr and return exit code 2."""
    print(f"aucseg {command}: error: {exc}", file=sys.stderr)
    return 2


def load(command: str, path: str | Path, overrides: list[str]) -> Config | int:
    """Load and validate a config; on a bad file/key/value return an exit code instead."""
    try:
        return load_config(path, overrides)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        return fail(command, exc)
