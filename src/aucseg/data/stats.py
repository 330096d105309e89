"""Per-class pixel statistics of a label set and the head / middle / tail split.

The rule (:func:`split_groups`) ranks classes by training pixel count, most frequent first:

* **head**: the most frequent classes that together hold ``head_mass`` of the labelled pixels
  (the smallest such prefix of the ranking, at least one class);
* **tail**: the ``round(tail_fraction · C)`` least frequent classes (never a head class);
* **middle**: the rest.

The official lists are exactly such rank cuts (ADE20K: the 124 least frequent of 150; Cityscapes:
the 7 of 19 with the fewest pixels; COCO-Stuff164k: 123 of 171), so :data:`TAIL_FRACTIONS` holds
those fractions and :func:`default_rule` returns them per dataset; for any other dataset the
default tail is the least frequent half. Ties in pixel count are broken by class id.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aucseg.data.io import MissingFileError, read_label
from aucseg.errors import InputError
from aucseg.fileio import atomic_write, write_text_atomic

__all__ = [
    "TAIL_FRACTIONS",
    "ClassStats",
    "compute_class_stats",
    "default_rule",
    "load_class_groups",
    "load_class_stats",
    "load_image_class_pixels",
    "plot_class_stats",
    "sample_names",
    "save_class_stats",
    "split_groups",
    "write_class_stats",
]

#: Fraction of classes in the official tail lists (of the official configs): reproduces their sizes.
TAIL_FRACTIONS: dict[str, float] = {
    "ade20k": 124 / 150,
    "cityscapes": 7 / 19,
    "coco_stuff164k": 123 / 171,
}
DEFAULT_HEAD_MASS = 0.5
DEFAULT_TAIL_FRACTION = 0.5
GROUPS = ("head", "middle", "tail")


@dataclass
class ClassStats:
    """Pixel and image counts per class, and the class pixels of every label file.

    Shape:
        pixel_counts, image_counts: (C,) int64. ``image_counts[c]`` = images containing class c.
        image_class_pixels: per label file (input order), ``{class id: pixels}`` of the classes
        it holds; image_names: the matching :func:`sample_names`.
    """

    pixel_counts: np.ndarray
    image_counts: np.ndarray
    num_images: int
    ignored_pixels: int
    image_class_pixels: list[dict[int, int]] | None = None
    image_names: list[str] | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes C."""
        return int(self.pixel_counts.shape[0])


def sample_names(label_paths: Sequence[str | Path]) -> list[str]:
    """Names of label files in a statistics file: the path below their common folder, no suffix.

    E.g. ``aachen/aachen_000000_000019_gtFine_labelTrainIds`` for Cityscapes: unique within a
    split and independent of where the dataset lives.
    """
    paths = [Path(p) for p in label_paths]
    if not paths:
        return []
    common = Path(os.path.commonpath([p.parent.absolute() for p in paths]))
    return [p.absolute().relative_to(common).with_suffix("").as_posix() for p in paths]


def _count_chunk(
    paths: Sequence[str], num_classes: int, reduce_zero_label: bool, ignore_index: int
) -> tuple[np.ndarray, np.ndarray, int, list[dict[int, int]]]:
    """Pixel counts, image counts, ignored pixels and per-image class pixels of a few label
    files (one worker task)."""
    pixels = np.zeros(num_classes, dtype=np.int64)
    images = np.zeros(num_classes, dtype=np.int64)
    ignored = 0
    per_image: list[dict[int, int]] = []
    offset = 1 if reduce_zero_label else 0  # reduce_zero_label: raw 0 -> ignore, k -> k - 1
    for path in paths:
        label = read_label(path)
        counts = np.bincount(label.ravel(), minlength=num_classes + offset + 1)
        if ignore_index < counts.shape[0] and not reduce_zero_label:
            counts[ignore_index] = 0
        valid = counts[offset : offset + num_classes]
        pixels += valid
        images += valid > 0
        ignored += int(label.size - valid.sum())
        present = np.flatnonzero(valid)
        per_image.append(dict(zip(present.tolist(), valid[present].tolist(), strict=True)))
    return pixels, images, ignored, per_image


def compute_class_stats(
    label_paths: Sequence[Path],
    num_classes: int,
    reduce_zero_label: bool = False,
    ignore_index: int = 255,
    workers: int = 2,
    progress: bool = True,
) -> ClassStats:
    """Count pixels and images per class over label files, in parallel.

    Args:
        label_paths: single-channel label images.
        num_classes: C; values outside [0, C) after the zero reduction count as ignored.
        reduce_zero_label: ADE20K convention (raw 0 = "other" is ignored, raw k is class k-1).
        ignore_index: ignore value (255).
        workers: worker processes; <= 1 counts in this process.
        progress: show a tqdm progress bar.

    Returns:
        The counts, with the per-image class pixels in input order.

    Raises:
        InputError: for an empty list, num_classes < 1, or a missing or unreadable label file.
    """
    paths = [str(p) for p in label_paths]
    if not paths:
        raise InputError("label_paths is empty: check the dataset root and split")
    if num_classes < 1:
        raise InputError(f"num_classes must be >= 1, got {num_classes}")
    size = max(1, min(64, math.ceil(len(paths) / max(1, workers) / 8)))
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    args = (num_classes, reduce_zero_label, ignore_index)
    bar = _progress(len(paths), progress)
    pixels = np.zeros(num_classes, dtype=np.int64)
    images = np.zeros(num_classes, dtype=np.int64)
    ignored = 0

    def results() -> Iterable[tuple[np.ndarray, np.ndarray, int, list[dict[int, int]]]]:
        if workers <= 1 or len(chunks) == 1:
            yield from (_count_chunk(chunk, *args) for chunk in chunks)
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_count_chunk, chunk, *args) for chunk in chunks]
            yield from (f.result() for f in futures)

    per_image: list[dict[int, int]] = []
    for (p, i, n, classes), chunk in zip(results(), chunks, strict=True):
        pixels += p
        images += i
        ignored += n
        per_image += classes
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return ClassStats(pixels, images, len(paths), ignored, per_image, sample_names(paths))


def _progress(total: int, enabled: bool) -> Any:
    """A tqdm bar over label files, or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="labels", unit="img")


def default_rule(dataset: str | None = None) -> dict[str, float]:
    """Rule parameters reproducing the official tail-list size of ``dataset`` (else the defaults).

    Returns:
        ``{"head_mass": ..., "tail_fraction": ...}`` for :func:`split_groups`.
    """
    fraction = TAIL_FRACTIONS.get((dataset or "").lower().replace("-", "_"), DEFAULT_TAIL_FRACTION)
    return {"head_mass": DEFAULT_HEAD_MASS, "tail_fraction": fraction}


def split_groups(
    pixel_counts: Sequence[int] | np.ndarray,
    head_mass: float = DEFAULT_HEAD_MASS,
    tail_fraction: float = DEFAULT_TAIL_FRACTION,
) -> dict[str, list[int]]:
    """Split classes into head / middle / tail by pixel count (rule in the module docstring).

    Args:
        pixel_counts: (C,) training pixel counts.
        head_mass: share of labelled pixels the head holds, in (0, 1].
        tail_fraction: fraction of classes in the tail, in [0, 1).

    Returns:
        ``{"head": [...], "middle": [...], "tail": [...]}``, each list ordered by decreasing
        pixel count (class ids).

    Raises:
        InputError: for parameters out of range or an empty/negative count vector.
    """
    counts = np.asarray(pixel_counts, dtype=np.int64)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any():
        raise InputError(f"pixel_counts must be a non-empty vector of counts >= 0, got {counts}")
    if not 0.0 < head_mass <= 1.0:
        raise InputError(f"head_mass must lie in (0, 1], got {head_mass}")
    if not 0.0 <= tail_fraction < 1.0:
        raise InputError(f"tail_fraction must lie in [0, 1), got {tail_fraction}")
    num = counts.size
    order = np.lexsort((np.arange(num), -counts))  # decreasing count, ties by id
    share = np.cumsum(counts[order]) / max(int(counts.sum()), 1)
    num_head = max(1, int(np.searchsorted(share, head_mass - 1e-12) + 1))
    num_tail = min(round(tail_fraction * num), num - 1)
    num_head = min(num_head, num - num_tail)
    ranked = order.tolist()
    return {
        "head": ranked[:num_head],
        "middle": ranked[num_head : num - num_tail],
        "tail": ranked[num - num_tail :],
    }


def save_class_stats(
    path: str | Path,
    stats: ClassStats,
    groups: Mapping[str, Sequence[int]],
    class_names: Sequence[str],
    rule: Mapping[str, Any] | None = None,
) -> Path:
    """Write counts, groups, the rule and the per-image class pixels to JSON.

    Keys: ``num_classes``, ``classes``, ``pixel_counts``, ``image_counts``, ``num_images``,
    ``ignored_pixels``, ``rule``, ``groups`` ({"head", "middle", "tail"}) and, when ``stats``
    has them, ``images``: one ``{"name": ..., "classes": [[class id, pixels], ...]}`` per
    label file in dataset order, one line each.

    Raises:
        InputError: when names or groups do not match the counts.
    """
    if len(class_names) != stats.num_classes:
        raise InputError(
            f"{len(class_names)} class names for {stats.num_classes} classes; pass one per class"
        )
    _check_groups(groups, stats.num_classes)
    rule_desc = {
        "ranking": "training pixel count, decreasing (ties by class id)",
        "head": "most frequent classes holding head_mass of the labelled pixels",
        "tail": "the round(tail_fraction * num_classes) least frequent classes",
        **(dict(rule) if rule else {}),
    }
    payload = {
        "num_classes": stats.num_classes,
        "classes": list(class_names),
        "pixel_counts": stats.pixel_counts.tolist(),
        "image_counts": stats.image_counts.tolist(),
        "num_images": stats.num_images,
        "ignored_pixels": stats.ignored_pixels,
        "rule": rule_desc,
        "groups": {k: [int(c) for c in groups[k]] for k in GROUPS},
    }
    text = json.dumps(payload, indent=1)
    if stats.image_class_pixels is not None and stats.image_names is not None:
        rows = [
            json.dumps({"name": name, "classes": [[int(c), int(n)] for c, n in d.items()]})
            for name, d in zip(stats.image_names, stats.image_class_pixels, strict=True)
        ]
        text = text[: -len("\n}")] + ',\n "images": [\n  ' + ",\n  ".join(rows) + "\n ]\n}"
    return write_text_atomic(path, text + "\n")


def _check_groups(groups: Mapping[str, Sequence[int]], num_classes: int) -> None:
    """Raise InputError unless groups has the three keys and partitions ids into [0, C)."""
    if set(groups) != set(GROUPS):
        raise InputError(f"groups must have keys {GROUPS}, got {sorted(groups)}")
    ids = [int(c) for k in GROUPS for c in groups[k]]
    if len(set(ids)) != len(ids) or any(not 0 <= c < num_classes for c in ids):
        raise InputError(f"groups must hold distinct class ids in [0, {num_classes}), got {ids}")


def load_class_stats(path: str | Path) -> dict[str, Any]:
    """Read a file written by :func:`save_class_stats` (files without ``images`` load too).

    Raises:
        MissingFileError: when the file does not exist (an InputError, a FileNotFoundError).
        InputError: when it is not JSON or lacks the expected keys.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"class statistics file {path} not found; run 'aucseg stats'")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(
            f"{path} is not a JSON 'aucseg stats' file ({err}); re-run 'aucseg stats'"
        ) from err
    missing = {"num_classes", "pixel_counts", "groups"} - set(
        data if isinstance(data, dict) else ()
    )
    if missing:
        raise InputError(f"{path} is not an 'aucseg stats' file: missing keys {sorted(missing)}")
    _check_groups(data["groups"], int(data["num_classes"]))
    return data


def load_image_class_pixels(path: str | Path, dataset: Any) -> list[dict[int, int]]:
    """Per-image ``{class id: pixels}`` of a statistics file, checked against ``dataset``.

    Args:
        path: file written by ``aucseg stats`` on the training split.
        dataset: the training dataset; its ``samples`` ((image, label) path pairs) must be the
            label files of the statistics, in the same order (names by :func:`sample_names`).

    Returns:
        One mapping per dataset sample, in dataset order.

    Raises:
        InputError: the file has no ``images`` (an older ``aucseg stats``) or they do not
            match the dataset's samples (stale statistics).
    """
    data = load_class_stats(path)
    rerun = "re-run 'aucseg stats' on the training split of this dataset"
    if "images" not in data:
        raise InputError(f"{path} holds no per-image class pixels (key 'images'); {rerun}")
    names = sample_names([label for _, label in dataset.samples])
    stored = [str(entry["name"]) for entry in data["images"]]
    if len(stored) != len(names):
        raise InputError(
            f"{path} describes {len(stored)} label files but the dataset has {len(names)} "
            f"samples; {rerun}"
        )
    for i, (have, want) in enumerate(zip(stored, names, strict=True)):
        if have != want:
            raise InputError(
                f"{path}: image {i} is {have!r} but the dataset's sample {i} is {want!r}; {rerun}"
            )
    return [{int(c): int(n) for c, n in entry["classes"]} for entry in data["images"]]


def load_class_groups(path: str | Path) -> dict[str, list[int]]:
    """The ``{"head", "middle", "tail"}`` class-id lists of a statistics file."""
    groups = load_class_stats(path)["groups"]
    return {k: [int(c) for c in groups[k]] for k in GROUPS}


def plot_class_stats(
    path_png: str | Path,
    pixel_counts: Sequence[int] | np.ndarray,
    groups: Mapping[str, Sequence[int]],
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Bar chart of pixel counts, classes sorted by count, log scale, coloured by group.

    Returns:
        ``path_png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(pixel_counts, dtype=np.int64)
    _check_groups(groups, counts.size)
    names = list(class_names) if class_names is not None else [str(i) for i in range(counts.size)]
    order = np.lexsort((np.arange(counts.size), -counts))
    colours = {"head": "#1f77b4", "middle": "#ff7f0e", "tail": "#d62728"}
    group_of = {int(c): g for g in GROUPS for c in groups[g]}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.12 * counts.size + 2), 4.0))
    ax.bar(
        np.arange(counts.size),
        np.maximum(counts[order], 1),
        color=[colours[group_of.get(int(c), "middle")] for c in order],
        width=0.85,
    )
    ax.set_yscale("log")
    ax.set_ylabel("training pixels")
    ax.set_xlabel("class (sorted by pixel count)")
    if counts.size <= 40:
        ax.set_xticks(np.arange(counts.size), [names[c] for c in order], rotation=90, fontsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[g]) for g in GROUPS]
    labels = [f"{g} ({len(groups[g])})" for g in GROUPS]
    ax.legend(handles, labels)
    ax.set_title(title or "class frequencies")
    fig.tight_layout()
    try:
        return atomic_write(path_png, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)


def write_class_stats(
    label_paths: Sequence[Path],
    num_classes: int,
    class_names: Sequence[str],
    out: str | Path,
    plot: str | Path | None = None,
    reduce_zero_label: bool = False,
    rule: Mapping[str, float] | None = None,
    workers: int = 2,
    progress: bool = True,
    title: str | None = None,
) -> tuple[ClassStats, dict[str, list[int]], Path]:
    """Count, split and write: what ``aucseg stats`` does, as one call.

    Args:
        label_paths: label files of the training split.
        num_classes: C.
        class_names: one name per class.
        out: JSON file to write (see :func:`save_class_stats`).
        plot: optional PNG bar chart (see :func:`plot_class_stats`).
        reduce_zero_label: labels store "other" as 0 and classes as 1..C (ADE20K).
        rule: :func:`split_groups` parameters; default :func:`default_rule` ``()``.
        workers, progress: as :func:`compute_class_stats`.
        title: chart title.

    Returns:
        The statistics, the groups and the JSON path.
    """
    stats = compute_class_stats(
        label_paths, num_classes, reduce_zero_label, workers=workers, progress=progress
    )
    rule = dict(rule) if rule is not None else default_rule()
    groups = split_groups(stats.pixel_counts, **rule)
    path = save_class_stats(out, stats, groups, class_names, rule=rule)
    if plot is not None:
        plot_class_stats(plot, stats.pixel_counts, groups, class_names, title)
    return stats, groups, path
