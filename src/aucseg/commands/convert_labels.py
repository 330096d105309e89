"""``aucseg convert-labels``: raw Cityscapes / COCO-Stuff164k annotations -> train-id PNGs."""

from __future__ import annotations

import argparse

from aucseg.data.convert import convert_cityscapes, convert_coco_stuff164k
from aucseg.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    parser.add_argument(
        "dataset",
        choices=["cityscapes", "coco_stuff164k"],
        help="which dataset's raw labels to convert",
    )
    parser.add_argument(
        "root",
        help="dataset folder: the one holding gtFine/ (Cityscapes) or annotations/ (COCO-Stuff)",
    )
    parser.add_argument(
        "--source",
        choices=["labelIds", "polygons"],
        default="labelIds",
        help="Cityscapes input: *_gtFine_labelIds.png (default) or *_gtFine_polygons.json "
        "(needs the cityscapesscripts package)",
    )
    parser.add_argument(
        "--out-dir",
        default=None,
        help="COCO-Stuff only: write OUT_DIR/{train2017,val2017}/ instead of next to the inputs",
    )
    parser.add_argument("--overwrite", action="store_true", help="rewrite existing outputs")
    parser.add_argument("--workers", type=int, default=1, help="processes to use (default 1)")


def run(args: argparse.Namespace) -> int:
    """Convert the labels and print how many files were written; 2 on a usage/data error."""
    if args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if args.dataset != "cityscapes" and args.source != "labelIds":
        raise InputError("--source applies to Cityscapes only; drop it for coco_stuff164k")
    try:
        if args.dataset == "cityscapes":
            n = convert_cityscapes(args.root, args.source, args.overwrite, args.workers)
        else:
            n = convert_coco_stuff164k(args.root, args.out_dir, args.overwrite, args.workers)
    except (ValueError, ImportError) as err:  # the converters' messages name the fix
        raise InputError(str(err)) from err
    print(f"wrote {n} train-id label files")
    return 0
