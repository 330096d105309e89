"""``aucseg predict CHECKPOINT IMAGES... --out DIR``: colour masks and overlays as PNG."""

from __future__ import annotations

import argparse

from aucseg.commands._common import add_set_argument, fail, load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``aucseg predict``."""
    parser.description = (
        "Segment images and write <stem>_mask.png (colour mask) and <stem>_overlay.png. "
        "The model comes from --config, or from the config stored in an aucseg checkpoint."
    )
    parser.add_argument("checkpoint", help="checkpoint file (aucseg or official mmseg)")
    parser.add_argument("images", nargs="+", help="input image files")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--config", default=None, help="YAML config (required for non-aucseg checkpoints)"
    )
    parser.add_argument("--mode", choices=["whole", "slide"], default=None, help="inference mode")
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Resolve the config, predict and list the written files."""
    from aucseg.config import apply_overrides, config_from_dict, config_to_dict
    from aucseg.engine.build import config_from_checkpoint, predict_from_config

    if args.config is not None:
        cfg = load("predict", args.config, list(args.overrides))
        if isinstance(cfg, int):
            return cfg
    else:
        try:
            stored = config_to_dict(config_from_checkpoint(args.checkpoint))
            cfg = config_from_dict(apply_overrides(stored, list(args.overrides)))
        except (FileNotFoundError, ValueError, TypeError) as exc:
            return fail("predict", exc)
    try:
        paths = predict_from_config(cfg, args.checkpoint, args.images, args.out, mode=args.mode)
    except (FileNotFoundError, ValueError) as exc:
        return fail("predict", exc)
    for path in paths:
        print(path)
    return 0
