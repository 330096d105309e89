"""``aucseg convert SRC DST``: rewrite a checkpoint as a clean aucseg or safetensors file."""

from __future__ import annotations

import argparse
import sys

from aucseg.models import MODELS, convert_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the convert options."""
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


def run(args: argparse.Namespace) -> int:
    """Convert, validating every key and shape against the model; print what was written."""
    try:
        dst, meta = convert_checkpoint(args.src, args.dst, args.model, args.num_classes)
    except (ValueError, FileNotFoundError) as err:
        print(f"aucseg convert: error: {err}", file=sys.stderr)
        return 2
    what = f"{meta['model']}" + (
        f" ({meta['num_classes']} classes)" if meta["target"] == "model" else " backbone"
    )
    print(f"wrote {dst}: {what}, from a {meta['source_kind']} checkpoint")
    return 0
