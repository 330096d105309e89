"""``aucseg predict CHECKPOINT INPUTS... --out DIR``: label PNGs, colour masks, overlays."""

from __future__ import annotations

import argparse

from aucseg.commands._common import add_runtime_arguments, add_set_argument, runtime_overrides
from aucseg.engine.tasks import inference_config, predict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``aucseg predict``."""
    parser.description = (
        "Segment images (files or folders) and write <stem>_labels.png (class ids), "
        "<stem>_mask.png (colours), <stem>_overlay.png and legend.png. The model comes from "
        "--config, or from the config stored in an aucseg checkpoint. The images go through "
        "the same test pipeline as aucseg test."
    )
    parser.add_argument("checkpoint", help="checkpoint file (aucseg or official mmseg)")
    parser.add_argument("inputs", nargs="+", help="image files or folders of images")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--config", default=None, help="YAML config (required for non-aucseg checkpoints)"
    )
    parser.add_argument("--mode", choices=["whole", "slide"], default=None, help="inference mode")
    add_runtime_arguments(parser)
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Resolve the config, predict and list the written files."""
    cfg = inference_config(args.config, args.checkpoint, runtime_overrides(args))
    for path in predict(cfg, args.checkpoint, args.inputs, args.out, args.mode):
        print(path)
    return 0
