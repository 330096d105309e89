"""``aucseg demo``: cross-entropy vs AUCSeg on generated long-tail scenes, with a report."""

from __future__ import annotations

import argparse

from aucseg.apps.demo import RUNS, run_demo
from aucseg.commands._common import add_set_argument
from aucseg.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``aucseg demo``."""
    parser.description = (
        "Generate a long-tailed scene set, train SegNeXt-T with cross-entropy only and with "
        "AUCSeg (Square AUC loss + T-Memory Bank) under the same budget, evaluate both and write "
        "OUT/report.md with metric tables, plots and prediction overlays."
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument(
        "--iterations", type=int, default=None, help="iterations per run (default: the configs')"
    )
    parser.add_argument("--num-train", type=int, default=200, help="generated training images")
    parser.add_argument("--num-val", type=int, default=50, help="generated validation images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and both runs")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print the two runs' headline numbers."""
    if args.iterations is not None and args.iterations < 1:
        raise InputError(f"--iterations must be >= 1, got {args.iterations}")
    out = run_demo(
        args.out,
        iterations=args.iterations,
        num_train=args.num_train,
        num_val=args.num_val,
        seed=args.seed,
        overrides=list(args.overrides),
        progress=not args.no_progress,
    )
    for key, _, label in RUNS:
        m = out[key]
        tail = "n/a" if m.get("mIoU_tail") is None else f"{m['mIoU_tail']:.2f}"
        print(f"{label:>7}: mIoU {m['mIoU']:.2f}  tail mIoU {tail}")
    print(f"report: {out['report']}")
    return 0
