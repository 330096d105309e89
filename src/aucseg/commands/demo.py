"""``aucseg demo``: CE, class-weighted CE and AUCSeg on generated long-tail scenes, a report."""

from __future__ import annotations

import argparse

from aucseg.apps.demo import DEMO_ITERATIONS, RUNS, run_demo
from aucseg.commands._common import add_set_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``aucseg demo``."""
    parser.description = (
        "Generate a long-tailed scene set, train SegNeXt-T from scratch with cross-entropy, "
        "class-weighted cross-entropy and AUCSeg (Square AUC loss + T-Memory Bank) under the "
        "same seed and budget, evaluate each and write OUT/report.md with metric tables, plots "
        "and prediction overlays."
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument(
        "--iterations",
        type=int,
        default=DEMO_ITERATIONS,
        help=f"iterations per run (default {DEMO_ITERATIONS})",
    )
    parser.add_argument("--num-train", type=int, default=200, help="generated training images")
    parser.add_argument("--num-val", type=int, default=100, help="generated validation images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and every run")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print each run's headline numbers."""
    out = run_demo(
        args.out,
        iterations=args.iterations,
        num_train=args.num_train,
        num_val=args.num_val,
        seed=args.seed,
        overrides=list(args.overrides),
        progress=not args.no_progress,
    )
    width = max(len(label) for _, _, label in RUNS)
    for key, _, label in RUNS:
        m = out[key]
        tail = "n/a" if m.get("mIoU_tail") is None else f"{m['mIoU_tail']:.2f}"
        print(f"{label:>{width}}: mIoU {m['mIoU']:.2f}  tail mIoU {tail}")
    print(f"report: {out['report']}")
    return 0
