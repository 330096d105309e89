"""``aucseg test CONFIG CHECKPOINT``: evaluate a checkpoint (aucseg or official mmseg)."""

from __future__ import annotations

import argparse
from pathlib import Path

from aucseg.commands._common import add_set_argument, fail, load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``aucseg test``."""
    parser.description = (
        "Evaluate a checkpoint on the config's validation split: aAcc, mIoU, mAcc, "
        "head/middle/tail mIoU and per-class IoU/accuracy (percent). Accepts aucseg "
        "checkpoints and official MMSegmentation SegNeXt checkpoints."
    )
    parser.add_argument("config", help="YAML config describing the model and dataset")
    parser.add_argument("checkpoint", help="checkpoint file (.pth or .safetensors)")
    parser.add_argument(
        "--mode",
        choices=["whole", "slide"],
        default=None,
        help="inference mode (default: evaluation.mode of the config)",
    )
    parser.add_argument(
        "--tta", action="store_true", help="multi-scale (0.5-1.75) + flip test-time augmentation"
    )
    parser.add_argument("--out", default=None, metavar="JSON", help="write metrics as JSON")
    parser.add_argument("--show-dir", default=None, help="also write colour predictions here")
    parser.add_argument(
        "--plot",
        default=None,
        metavar="PNG",
        help="per-class IoU bar chart, coloured by group (default with --out: beside the JSON)",
    )
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Validate the config, evaluate, print the table and write ``--out``."""
    cfg = load("test", args.config, list(args.overrides))
    if isinstance(cfg, int):
        return cfg
    from aucseg.engine.build import evaluate_from_config

    plot = args.plot
    if plot is None and args.out is not None:
        plot = Path(args.out).with_name(Path(args.out).stem + "_per_class.png")
    try:
        evaluate_from_config(
            cfg,
            args.checkpoint,
            mode=args.mode,
            tta=args.tta,
            out=args.out,
            show_dir=args.show_dir,
            plot=plot,
        )
    except (FileNotFoundError, ValueError) as exc:
        return fail("test", exc)
    return 0
