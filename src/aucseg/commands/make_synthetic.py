"""``aucseg make-synthetic``: write a small long-tailed scene-parsing set to disk."""

from __future__ import annotations

import argparse

from aucseg.data.synthetic import DEFAULT_ZIPF_A, LAYOUTS, make_synthetic
from aucseg.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``aucseg make-synthetic``."""
    parser.add_argument("--root", required=True, help="output folder (created)")
    parser.add_argument("--layout", choices=LAYOUTS, default="cityscapes", help="folder layout")
    parser.add_argument("--num-train", type=int, default=200, help="training images")
    parser.add_argument("--num-val", type=int, default=50, help="validation images")
    parser.add_argument("--height", type=int, default=128, help="image height")
    parser.add_argument("--width", type=int, default=256, help="image width")
    parser.add_argument(
        "--num-classes", type=int, default=None, help="classes (default 19 cityscapes, 150 ade20k)"
    )
    parser.add_argument(
        "--zipf-a", type=float, default=DEFAULT_ZIPF_A, help="Zipf exponent of class shares"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")


def run(args: argparse.Namespace) -> int:
    """Generate the set and print where it went."""
    try:
        root = make_synthetic(
            args.root,
            layout=args.layout,
            num_train=args.num_train,
            num_val=args.num_val,
            height=args.height,
            width=args.width,
            num_classes=args.num_classes,
            zipf_a=args.zipf_a,
            seed=args.seed,
        )
    except ValueError as exc:  # the generator's argument checks name the option and the range
        raise InputError(str(exc)) from exc
    print(
        f"wrote {args.num_train} train + {args.num_val} val images "
        f"({args.height}x{args.width}, {args.layout} layout) to {root}"
    )
    return 0
