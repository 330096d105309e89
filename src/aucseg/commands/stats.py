"""``aucseg stats``: per-class pixel statistics, the head/middle/tail split and a bar chart."""

from __future__ import annotations

import argparse
from pathlib import Path

from aucseg.commands._common import add_set_argument
from aucseg.config import apply_overrides, config_from_dict, read_config_dict
from aucseg.data import build_dataset
from aucseg.data.stats import default_rule, write_class_stats
from aucseg.engine.build import build_plain_dataset
from aucseg.errors import InputError

# (label paths, number of classes, reduce_zero_label, class names, dataset name, split)
Labels = tuple[list[Path], int, bool, list[str], str | None, str]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``aucseg stats``."""
    parser.description = (
        "Count the training pixels of every class, split the classes into head, middle and "
        "tail, and write the JSON that data.class_groups takes (plus an optional bar chart). "
        "The labels come from a run config (--config: its dataset and training split), a "
        "registered dataset (--dataset, --root) or a folder of label PNGs (--label-dir)."
    )
    src = parser.add_argument_group("labels: a run config, a registered dataset, or a folder")
    src.add_argument(
        "--config", help="YAML config or shipped config name: its dataset's training split"
    )
    src.add_argument("--dataset", help="dataset name, e.g. cityscapes, ade20k, coco_stuff164k")
    src.add_argument("--root", help="dataset root folder (with --dataset)")
    src.add_argument(
        "--split", default=None, help="split to scan (default: data.train_split, or train)"
    )
    src.add_argument("--label-dir", help="folder searched recursively for label PNGs")
    src.add_argument("--pattern", default="*.png", help="file pattern with --label-dir")
    src.add_argument("--num-classes", type=int, help="number of classes (with --label-dir)")
    src.add_argument(
        "--reduce-zero-label", action="store_true", help="label 0 is 'other' (with --label-dir)"
    )
    add_set_argument(parser)
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


def _from_dataset(dataset, name: str, split: str) -> Labels:
    paths = [Path(label) for _, label in dataset.samples]
    zero = bool(dataset.reduce_zero_label)
    return paths, int(dataset.num_classes), zero, list(dataset.classes), name, split


def _labels_from_config(args: argparse.Namespace) -> Labels:
    """The labels of the config's dataset, as the run will read them."""
    raw = apply_overrides(read_config_dict(args.config), list(args.overrides))
    raw["data"] = dict(raw.get("data") or {})
    if raw["data"].get("class_groups") is None:
        # the run will use the file written here: keys that need it (a tail-based best metric,
        # a rare-class sampler) are then valid
        raw["data"]["class_groups"] = str(args.out)
    cfg = config_from_dict(raw)
    split = args.split or cfg.data.train_split
    return _from_dataset(build_plain_dataset(cfg, split), cfg.data.dataset, split)


def _labels_from_registry(args: argparse.Namespace) -> Labels:
    """The labels of a registered dataset."""
    if args.root is None:
        raise InputError(f"--dataset {args.dataset} needs --root DIR (the dataset folder)")
    split = args.split or "train"
    return _from_dataset(build_dataset(args.dataset, args.root, split), args.dataset, split)


def _labels_from_folder(args: argparse.Namespace) -> Labels:
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
    zero = bool(args.reduce_zero_label)
    return paths, args.num_classes, zero, names, None, args.split or "train"


def _labels(args: argparse.Namespace) -> Labels:
    sources = [s for s in ("config", "dataset", "label_dir") if getattr(args, s) is not None]
    if len(sources) != 1:
        raise InputError(
            "give either --config CONFIG, --dataset NAME --root DIR, or --label-dir DIR "
            f"--num-classes C (got {len(sources)})"
        )
    if args.overrides and sources[0] != "config":
        raise InputError("--set applies to --config only")
    load = {
        "config": _labels_from_config,
        "dataset": _labels_from_registry,
        "label_dir": _labels_from_folder,
    }[sources[0]]
    return load(args)


def run(args: argparse.Namespace) -> int:
    """Scan the labels, split the classes, write JSON (and PNG); print the groups."""
    paths, num_classes, reduce_zero, names, dataset, split = _labels(args)
    rule = default_rule(dataset)
    if args.head_mass is not None:
        rule["head_mass"] = args.head_mass
    if args.tail_fraction is not None:
        rule["tail_fraction"] = args.tail_fraction
    title = f"{dataset or Path(args.label_dir).name} ({split})"
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
