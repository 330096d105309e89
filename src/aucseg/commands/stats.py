"""``aucseg stats``: per-class pixel statistics, the head/middle/tail split and a bar chart."""

from __future__ import annotations

import argparse
from pathlib import Path

from aucseg.data.stats import default_rule, write_class_stats
from aucseg.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``aucseg stats``."""
    src = parser.add_argument_group("labels (a registered dataset, or a folder of label PNGs)")
    src.add_argument("--dataset", help="dataset name, e.g. cityscapes, ade20k, coco_stuff164k")
    src.add_argument("--root", help="dataset root folder (with --dataset)")
    src.add_argument("--split", default="train", help="split to scan (default: train)")
    src.add_argument("--label-dir", help="folder searched recursively for label PNGs")
    src.add_argument("--pattern", default="*.png", help="file pattern with --label-dir")
    src.add_argument("--num-classes", type=int, help="number of classes (with --label-dir)")
    src.add_argument(
        "--reduce-zero-label", action="store_true", help="label 0 is 'other' (with --label-dir)"
    )
    parser.add_argument("--out", default="class_stats.json", help="output JSON file")
    parser.add_argument("--plot", help="also draw a PNG bar chart here")
    parser.add_argument(
        "--head-mass", type=float, help="share of pixels the head holds (default 0.5)"
    )
    parser.add_argument(
        "--tail-fraction",
        type=float,
        help="fraction of classes in the tail (default: the official list size for known "
        "datasets, else 0.5)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _labels_from_dataset(args: argparse.Namespace) -> tuple[list[Path], int, bool, list[str]]:
    """Label paths, C, reduce_zero_label and class names from the dataset registry."""
    from aucseg.data import build_dataset

    dataset = build_dataset(args.dataset, args.root, args.split)
    paths = [Path(label) for _, label in dataset.samples]
    return paths, int(dataset.num_classes), bool(dataset.reduce_zero_label), list(dataset.classes)


def _labels_from_folder(args: argparse.Namespace) -> tuple[list[Path], int, bool, list[str]]:
    """Label paths, C, reduce_zero_label and class names for --label-dir."""
    folder = Path(args.label_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"--label-dir {folder} is not a folder")
    if args.num_classes is None or args.num_classes < 1:
        raise InputError(f"--label-dir needs --num-classes >= 1, got {args.num_classes}")
    paths = sorted(folder.rglob(args.pattern))
    if not paths:
        raise FileNotFoundError(f"no files matching {args.pattern!r} under {folder}")
    names = [str(i) for i in range(args.num_classes)]
    return paths, args.num_classes, bool(args.reduce_zero_label), names


def run(args: argparse.Namespace) -> int:
    """Scan the labels, split the classes, write JSON (and PNG); print the groups."""
    if (args.dataset is None) == (args.label_dir is None):
        raise InputError("give either --dataset NAME --root DIR or --label-dir DIR --num-classes C")
    if args.dataset is not None and args.root is None:
        raise InputError(f"--dataset {args.dataset} needs --root DIR (the dataset folder)")
    load = _labels_from_dataset if args.dataset else _labels_from_folder
    paths, num_classes, reduce_zero, names = load(args)
    rule = default_rule(args.dataset)
    if args.head_mass is not None:
        rule["head_mass"] = args.head_mass
    if args.tail_fraction is not None:
        rule["tail_fraction"] = args.tail_fraction
    title = f"{args.dataset or Path(args.label_dir).name} ({args.split})"
    stats, groups, out = write_class_stats(
        paths, num_classes, names, args.out, plot=args.plot, reduce_zero_label=reduce_zero,
        rule=rule, workers=args.workers, progress=not args.no_progress, title=title,
    )  # fmt: skip
    print(f"{stats.num_images} label files, {num_classes} classes -> {out}")
    for group in ("head", "middle", "tail"):
        print(f"{group:>6} ({len(groups[group])}): {sorted(groups[group])}")
    if args.plot:
        print(f"plot -> {args.plot}")
    return 0
