"""``aucseg compare A.json B.json``: print two metric files side by side, optionally plot them."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``compare`` options."""
    parser.add_argument("a", type=Path, help="first metrics JSON (written by 'aucseg test')")
    parser.add_argument("b", type=Path, help="second metrics JSON")
    parser.add_argument(
        "--labels",
        nargs=2,
        metavar=("A", "B"),
        default=None,
        help="column / legend names (default: the file stems, or folder names if equal)",
    )
    parser.add_argument(
        "--out-png",
        type=Path,
        default=None,
        help="also write overall/head/middle/tail mIoU bars of both files to this PNG",
    )


def _default_labels(a: Path, b: Path) -> tuple[str, str]:
    """File stems, or the parent folder names when the stems are equal (runs/x/metrics.json)."""
    if a.stem != b.stem:
        return a.stem, b.stem
    return a.resolve().parent.name, b.resolve().parent.name


def run(args: argparse.Namespace) -> int:
    """Print the comparison table; write the PNG when asked. Raises on a missing or invalid file."""
    from aucseg.metrics import compare_results, load_metrics_json, plot_group_comparison

    labels = tuple(args.labels) if args.labels else _default_labels(args.a, args.b)
    a, b = load_metrics_json(args.a), load_metrics_json(args.b)  # bad files: exit code 2
    print(compare_results(a, b, labels=labels))
    if args.out_png is not None:
        path = plot_group_comparison(a, b, args.out_png, labels=labels)
        print(f"wrote {path}")
    return 0
