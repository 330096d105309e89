"""``aucseg convert SRC DST``: rewrite a checkpoint as a clean aucseg or safetensors file."""

from __future__ import annotations

import argparse

from aucseg.commands._common import add_set_argument
from aucseg.config import config_to_dict, load_config
from aucseg.errors import InputError
from aucseg.models import MODELS, convert_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the convert options."""
    parser.description = (
        "Rewrite a checkpoint as a clean aucseg file, every key and shape checked against the "
        "model. With --config the model is the config's (any registered or import-path model "
        "with its options) and the written file stores the config, so that aucseg predict and "
        "aucseg test '-' need no --config for it."
    )
    parser.add_argument(
        "src",
        help="checkpoint to read: MMSegmentation (official AUCSeg/SegNeXt), plain state_dict, "
        "aucseg, .safetensors, or an ImageNet backbone file (mscan_*.pth, torchvision ResNet)",
    )
    parser.add_argument(
        "dst",
        help="file to write: .safetensors -> safetensors, otherwise a torch file "
        "{'model': state_dict, 'meta': {...}}",
    )
    parser.add_argument(
        "--config", default=None, help="YAML config whose model the weights belong to"
    )
    parser.add_argument(
        "--model",
        choices=sorted(MODELS),
        default=None,
        help="model the weights belong to (default: inferred from the keys)",
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="number of classes (default: inferred from decode_head.conv_seg)",
    )
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Convert, validating every key and shape against the model; print what was written."""
    if args.config is None:
        if args.overrides:
            raise InputError("--set needs --config (it overrides that config's values)")
        dst, meta = convert_checkpoint(args.src, args.dst, args.model, args.num_classes)
    else:
        if args.model is not None or args.num_classes is not None:
            raise InputError(
                "--config states the model and its classes; drop --model / --num-classes "
                "(or change them with --set model.name=... model.num_classes=...)"
            )
        cfg = load_config(args.config, list(args.overrides))
        m = cfg.model
        dst, meta = convert_checkpoint(
            args.src, args.dst, m.name, m.num_classes, config=config_to_dict(cfg),
            options=m.options(),
        )  # fmt: skip
    what = f"{meta['model']}" + (
        f" ({meta['num_classes']} classes)" if meta["target"] == "model" else " backbone"
    )
    print(f"wrote {dst}: {what}, from a {meta['source_kind']} checkpoint")
    return 0
