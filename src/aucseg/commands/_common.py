"""Argument helpers shared by the commands that read a config."""

from __future__ import annotations

import argparse


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


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--no-progress`` (runtime.device / runtime.progress)."""
    parser.add_argument(
        "--device", default=None, help="auto (default), cpu, cuda or cuda:N (runtime.device)"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (runtime.progress=false)"
    )


def runtime_overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` items plus those implied by ``--device`` / ``--no-progress`` (they win)."""
    overrides = list(getattr(args, "overrides", []))
    if getattr(args, "device", None):
        overrides.append(f"runtime.device={args.device}")
    if getattr(args, "no_progress", False):
        overrides.append("runtime.progress=false")
    return overrides
