"""``aucseg test CONFIG CHECKPOINT``: evaluate a checkpoint (aucseg or official mmseg)."""

from __future__ import annotations

import argparse
from pathlib import Path

from aucseg.commands._common import add_runtime_arguments, add_set_argument, runtime_overrides
from aucseg.engine.tasks import inference_config, test


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``aucseg test``."""
    parser.description = (
        "Evaluate a checkpoint on the config's validation split: aAcc, mIoU, mAcc, "
        "head/middle/tail mIoU and per-class IoU/accuracy (percent). Accepts aucseg "
        "checkpoints and official MMSegmentation SegNeXt checkpoints. CONFIG may be '-' to "
        "use the config stored in an aucseg checkpoint."
    )
    parser.add_argument("config", help="YAML config describing the model and dataset, or '-'")
    parser.add_argument("checkpoint", help="checkpoint file (.pth or .safetensors)")
    parser.add_argument(
        "--mode", choices=["whole", "slide"], default=None, help="inference mode (evaluation.mode)"
    )
    parser.add_argument(
        "--tta", action="store_true", help="multi-scale (0.5-1.75) + flip test-time augmentation"
    )
    parser.add_argument("--split", default=None, help="split to evaluate (data.val_split)")
    parser.add_argument("--out", default=None, metavar="JSON", help="write metrics as JSON")
    parser.add_argument("--label", default=None, help="method label stored for aucseg compare")
    parser.add_argument("--show-dir", default=None, help="also write colour predictions here")
    parser.add_argument(
        "--plot",
        default=None,
        metavar="PNG",
        help="per-class IoU bar chart, coloured by group (default with --out: beside the JSON)",
    )
    add_runtime_arguments(parser)
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Resolve the config, evaluate, print the table and write ``--out``."""
    config = None if args.config == "-" else args.config
    cfg = inference_config(config, args.checkpoint, runtime_overrides(args))
    plot = args.plot
    if plot is None and args.out is not None:
        plot = Path(args.out).with_name(Path(args.out).stem + "_per_class.png")
    label = args.label or (Path(config).stem if config else None)
    test(
        cfg, args.checkpoint, args.mode, args.tta, args.out, args.show_dir, plot, args.split, label
    )
    return 0
