"""Convert raw Cityscapes and COCO-Stuff164k annotations to the train ids the datasets read.

* Cityscapes: ``gtFine/**/*_gtFine_labelIds.png`` (34 label ids) -> ``*_gtFine_labelTrainIds.png``
  (19 train ids, 255 ignore), with the public Cityscapes label table; or, when the optional
  ``cityscapesscripts`` package is installed, from the ``*_gtFine_polygons.json`` files.
* COCO-Stuff164k: ``annotations/{train2017,val2017}/*.png`` (182 ids, 255 unlabeled) ->
  ``*_labelTrainIds.png`` (171 train ids): the 11 ids unused by COCO-Stuff are dropped.

Both are lookup tables applied with one indexing operation per image.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from aucseg.data.io import read_label, write_label

IGNORE_INDEX = 255

# Cityscapes label id -> train id (the public table of cityscapesscripts' labels.py);
# every id not listed (void classes, caravan, trailer, license plate, ...) maps to 255.
CITYSCAPES_ID_TO_TRAINID: dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
    25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip

# COCO-Stuff ids 0..181 that no annotation uses; the remaining 171 are renumbered in order.
COCO_STUFF_UNUSED_IDS: tuple[int, ...] = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)


def _lut(mapping: dict[int, int]) -> np.ndarray:
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for src, dst in mapping.items():
        lut[src] = dst
    return lut


CITYSCAPES_LUT = _lut(CITYSCAPES_ID_TO_TRAINID)
COCO_STUFF_ID_TO_TRAINID: dict[int, int] = {
    src: dst for dst, src in enumerate(i for i in range(182) if i not in COCO_STUFF_UNUSED_IDS)
}
COCO_STUFF_LUT = _lut(COCO_STUFF_ID_TO_TRAINID)


def _apply_lut(label: np.ndarray, lut: np.ndarray, what: str) -> np.ndarray:
    label = np.asarray(label)
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(
            f"{what} ids must lie in [0, 255], got range [{label.min()}, {label.max()}]; "
            "is this really a raw label map?"
        )
    return lut[label.astype(np.intp)]


def cityscapes_labelids_to_trainids(label: np.ndarray) -> np.ndarray:
    """Map Cityscapes label ids (0..33) to train ids (0..18, 255 = ignore).

    Args:
        label: (H, W) integer array of ``*_gtFine_labelIds.png`` values.

    Returns:
        (H, W) uint8 train-id map.
    """
    return _apply_lut(label, CITYSCAPES_LUT, "Cityscapes label")


def coco_stuff_to_trainids(label: np.ndarray) -> np.ndarray:
    """Map raw COCO-Stuff164k ids (0..181, 255 unlabeled) to train ids (0..170, 255 ignore).

    Args:
        label: (H, W) integer array of a raw ``annotations/*/*.png``.

    Returns:
        (H, W) uint8 train-id map.
    """
    return _apply_lut(label, COCO_STUFF_LUT, "COCO-Stuff")


def _convert_one(job: tuple[Path, Path, str]) -> None:
    src, dst, kind = job
    if kind == "polygons":
        _polygons_to_trainids(src, dst)
        return
    fn = cityscapes_labelids_to_trainids if kind == "cityscapes" else coco_stuff_to_trainids
    write_label(dst, fn(read_label(src)))


def _polygons_to_trainids(src: Path, dst: Path) -> None:
    from cityscapesscripts.preparation.json2labelImg import json2labelImg

    dst.parent.mkdir(parents=True, exist_ok=True)
    json2labelImg(str(src), str(dst), "trainIds")


def _run_jobs(jobs: list[tuple[Path, Path, str]], workers: int) -> int:
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_convert_one, jobs, chunksize=16))
    else:
        for job in jobs:
            _convert_one(job)
    return len(jobs)


def _jobs(
    pairs: Iterable[tuple[Path, Path]], overwrite: bool, kind: str
) -> list[tuple[Path, Path, str]]:
    """(source, output, kind) for every pair whose output is missing (all of them if overwrite)."""
    return [(src, dst, kind) for src, dst in pairs if overwrite or not dst.exists()]


def convert_cityscapes(
    root: str | Path, source: str = "labelIds", overwrite: bool = False, workers: int = 1
) -> int:
    """Write ``*_gtFine_labelTrainIds.png`` next to every Cityscapes annotation under ``root``.

    Args:
        root: the Cityscapes folder (holding ``gtFine/``).
        source: ``"labelIds"`` (from ``*_gtFine_labelIds.png``) or ``"polygons"`` (from
            ``*_gtFine_polygons.json``; needs ``pip install cityscapesscripts``).
        overwrite: rewrite files that already exist (default: skip them).
        workers: processes to use (1 = in this process).

    Returns:
        Number of files written.

    Raises:
        FileNotFoundError: ``root/gtFine`` is missing or holds no source file.
        ValueError: unknown ``source``. ImportError: polygons without cityscapesscripts.
    """
    gt = Path(root) / "gtFine"
    if not gt.is_dir():
        raise FileNotFoundError(f"Cityscapes annotation folder not found: {gt}")
    if source == "labelIds":
        pattern, suffix, kind = "*_gtFine_labelIds.png", "_gtFine_labelIds.png", "cityscapes"
    elif source == "polygons":
        pattern, suffix, kind = "*_gtFine_polygons.json", "_gtFine_polygons.json", "polygons"
        try:
            import cityscapesscripts  # noqa: F401
        except ImportError as err:
            raise ImportError(
                "converting Cityscapes polygons needs the optional package cityscapesscripts "
                "(pip install cityscapesscripts), or use source='labelIds'"
            ) from err
    else:
        raise ValueError(f"source must be 'labelIds' or 'polygons', got {source!r}")
    sources = sorted(gt.rglob(pattern))
    if not sources:
        raise FileNotFoundError(f"no {pattern} files under {gt}; nothing to convert")
    stems = ((src, src.name[: -len(suffix)]) for src in sources)
    pairs = ((src, src.with_name(f"{stem}_gtFine_labelTrainIds.png")) for src, stem in stems)
    return _run_jobs(_jobs(pairs, overwrite, kind), workers)


def convert_coco_stuff164k(
    root: str | Path,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    workers: int = 1,
) -> int:
    """Write ``<name>_labelTrainIds.png`` for every raw COCO-Stuff164k annotation.

    Args:
        root: the COCO-Stuff folder holding ``annotations/{train2017,val2017}/*.png``.
        out_dir: where to write (``out_dir/{train2017,val2017}/``); default
            ``root/annotations`` (next to the raw files, the layout the dataset reads).
        overwrite: rewrite files that already exist (default: skip them).
        workers: processes to use (1 = in this process).

    Returns:
        Number of files written.

    Raises:
        FileNotFoundError: no split folder or no raw annotation found.
    """
    ann = Path(root) / "annotations"
    splits = [s for s in ("train2017", "val2017") if (ann / s).is_dir()]
    if not splits:
        raise FileNotFoundError(
            f"COCO-Stuff annotation folders not found: expected {ann}/train2017 and/or "
            f"{ann}/val2017"
        )
    sources = [
        (split, src)
        for split in splits
        for src in sorted((ann / split).glob("*.png"))
        if not src.name.endswith("_labelTrainIds.png")  # outputs written next to the inputs
    ]
    if not sources:
        raise FileNotFoundError(f"no raw COCO-Stuff annotations (*.png) under {ann}/{splits}")
    out = Path(out_dir) if out_dir is not None else ann
    pairs = ((src, out / split / f"{src.stem}_labelTrainIds.png") for split, src in sources)
    return _run_jobs(_jobs(pairs, overwrite, "coco"), workers)
