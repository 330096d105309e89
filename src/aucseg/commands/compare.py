"""``aucseg compare FILE... [LABEL=FILE...]``: mean ± std of result files per method label.

Each file is a results JSON written by ``aucseg test --out``. Files that share a label are
aggregated (e.g. one method trained with several seeds); the command prints a markdown table
with one row per label, and with exactly two labels also the side-by-side table of their means
with deltas (second minus first). Bad input raises :class:`aucseg.errors.InputError`; the
command line prints it as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import glob
from collections.abc import Mapping, Sequence
from pathlib import Path

from aucseg.errors import InputError
from aucseg.metrics import (
    aggregate_means,
    aggregate_results,
    compare_results,
    format_aggregate_per_class,
    format_aggregate_table,
    load_metrics_json,
    plot_aggregate,
    write_metrics_json,
)

_GLOB_CHARS = frozenset("*?[")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``compare`` options."""
    parser.description = (
        "Aggregate result files (written by 'aucseg test --out') into mean ± sample std "
        "(ddof=1) per method label: overall/head/middle/tail mIoU, mAcc, aAcc and per class."
    )
    parser.add_argument(
        "files",
        nargs="+",
        metavar="[LABEL=]JSON",
        help="result files; 'LABEL=PATTERN' labels every file the (quoted) glob matches, "
        "e.g. CE='runs/ce_seed*/metrics.json'",
    )
    parser.add_argument(
        "--labels",
        nargs="+",
        default=None,
        metavar="LABEL",
        help="one label per file, in order (put it after the files); equal labels are "
        "aggregated. Default: provenance label, else the config name, else the file stem "
        "(the folder name when files in different folders share a stem)",
    )
    parser.add_argument(
        "--out-json", type=Path, default=None, metavar="JSON", help="write the aggregate here"
    )
    parser.add_argument(
        "--plot",
        "--out-png",
        dest="plot",
        type=Path,
        default=None,
        metavar="PNG",
        help="grouped bars of overall/head/middle/tail mIoU per label, std as error bars",
    )
    parser.add_argument(
        "--per-class", action="store_true", help="also print the per-class IoU table"
    )


def _expand(pattern: str) -> list[Path]:
    """``pattern`` as a path, or the sorted files its glob matches (``**`` recursive)."""
    if Path(pattern).exists() or not _GLOB_CHARS & set(pattern):
        return [Path(pattern)]
    matches = sorted(glob.glob(pattern, recursive=True))
    if not matches:
        raise InputError(f"pattern '{pattern}' matched no file; check the path and quoting")
    return [Path(m) for m in matches]


def parse_sources(items: Sequence[str]) -> list[tuple[str | None, Path]]:
    """Split ``LABEL=PATH`` items (an existing file named with ``=`` stays a path), expand globs.

    Args:
        items: the positional arguments of ``aucseg compare``.

    Returns:
        ``(label or None, path)`` per file, in argument order.

    Raises:
        InputError: an empty label or a pattern that matches no file.
    """
    sources: list[tuple[str | None, Path]] = []
    for item in items:
        label: str | None = None
        pattern = item
        if "=" in item and not Path(item).exists():
            label, _, pattern = item.partition("=")
            if not label.strip() or not pattern:
                raise InputError(f"argument {item!r} is not LABEL=PATH; give e.g. CE=ce.json")
        sources.extend((label, path) for path in _expand(pattern))
    return sources


def _provenance_label(results: Mapping) -> str | None:
    """``provenance.label``, else the stem of ``provenance.config`` (a path or shipped name)."""
    provenance = results.get("provenance") or {}
    if isinstance(provenance.get("label"), str) and provenance["label"]:
        return provenance["label"]
    config = provenance.get("config")
    return Path(config).stem if isinstance(config, str) and config else None


def default_labels(paths: Sequence[Path], results: Sequence[Mapping]) -> list[str]:
    """Labels for files given without one: provenance label/config name, else the file stem.

    A file without provenance whose stem is shared by such a file in another folder
    (``runs/ce/metrics.json`` and ``runs/auc/metrics.json``) is labelled by its folder name.
    """
    labels = [_provenance_label(r) for r in results]
    stems: dict[str, set[Path]] = {}
    for path, label in zip(paths, labels, strict=True):
        if label is None:
            stems.setdefault(path.stem, set()).add(path.resolve().parent)
    return [
        label
        if label is not None
        else (path.resolve().parent.name if len(stems[path.stem]) > 1 else path.stem)
        for path, label in zip(paths, labels, strict=True)
    ]


def resolve_labels(
    sources: Sequence[tuple[str | None, Path]],
    results: Sequence[Mapping],
    labels: Sequence[str] | None,
) -> list[str]:
    """One label per file: ``--labels``, else ``LABEL=`` prefixes, else :func:`default_labels`.

    Raises:
        InputError: ``--labels`` mixed with ``LABEL=PATH`` or of the wrong count.
    """
    if labels is not None:
        if any(label is not None for label, _ in sources):
            raise InputError("use either --labels or LABEL=PATH arguments, not both")
        if len(labels) != len(sources):
            raise InputError(
                f"got {len(labels)} labels for {len(sources)} files; pass one --labels entry "
                "per file (after the files), or LABEL=PATH arguments"
            )
        return [str(x) for x in labels]
    fallback = default_labels([p for _, p in sources], results)
    return [label if label is not None else fallback[i] for i, (label, _) in enumerate(sources)]


def run(args: argparse.Namespace) -> int:
    """Print the aggregate table(s); write ``--out-json`` and ``--plot`` when asked.

    Raises:
        InputError: a missing or invalid file, bad labels, or files of different classes.
    """
    sources = parse_sources(args.files)
    results = [load_metrics_json(path) for _, path in sources]
    labels = resolve_labels(sources, results, args.labels)
    aggregate = aggregate_results(results, labels, sources=[str(p) for _, p in sources])
    print(format_aggregate_table(aggregate))
    if args.per_class:
        print()
        print(format_aggregate_per_class(aggregate))
    methods = aggregate["methods"]
    if len(methods) == 2:
        print()
        pair = (methods[0]["label"], methods[1]["label"])
        print(compare_results(*(aggregate_means(m) for m in methods), labels=pair))
    if args.out_json is not None:
        print(f"wrote {write_metrics_json(args.out_json, aggregate)}")
    if args.plot is not None:
        print(f"wrote {plot_aggregate(aggregate, args.plot)}")
    return 0
