"""Semantic-segmentation datasets: ADE20K, Cityscapes, COCO-Stuff164k and a generic folder.

Every dataset is a list of (image, label) file pairs found at construction time. An item is a
dict ``{"image": (H, W, 3) uint8 RGB, "label": (H, W) int64, "image_path", "label_path"}`` with
the dataset's label convention applied (ignore = 255; ADE20K: ``reduce_zero_label``, i.e. 0 ->
255 and every other id minus 1), then passed through ``transforms`` when given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch.utils.data import Dataset

from aucseg.data.classes import (
    ADE20K_CLASSES,
    ADE20K_PALETTE,
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    COCO_STUFF_CLASSES,
    COCO_STUFF_PALETTE,
    default_palette,
)
from aucseg.data.io import read_image, read_label

IGNORE_INDEX = 255
Sample = dict[str, Any]
Transform = Callable[[Sample], Sample]


def _require_dir(path: Path, what: str) -> None:
    if path.is_dir():
        return
    parent = path.parent
    hint = ""
    if parent.is_dir():
        subdirs = sorted(p.name for p in parent.iterdir() if p.is_dir())
        hint = f"; {parent} holds: {', '.join(subdirs[:10]) or 'no folders'}"
    raise FileNotFoundError(f"{what} not found: {path}{hint}")


def _files_with_suffix(folder: Path, suffix: str) -> dict[str, Path]:
    """Map 'relative/path/without/suffix' -> file for every file under folder ending in suffix."""
    found: dict[str, Path] = {}
    for dirpath, _, filenames in os.walk(folder, followlinks=True):
        for name in filenames:
            if name.endswith(suffix) and len(name) > len(suffix):
                full = Path(dirpath, name)
                key = full.relative_to(folder).as_posix()[: -len(suffix)]
                found[key] = full
    return found


def scan_pairs(
    img_dir: str | Path, ann_dir: str | Path, img_suffix: str, seg_suffix: str
) -> list[tuple[Path, Path]]:
    """Pair every image under ``img_dir`` with its label under ``ann_dir`` (recursive).

    The label of ``img_dir/a/b<img_suffix>`` is ``ann_dir/a/b<seg_suffix>``.

    Args:
        img_dir: folder of images. ann_dir: folder of label maps.
        img_suffix: file-name ending of images (e.g. ``".jpg"``, ``"_leftImg8bit.png"``).
        seg_suffix: file-name ending of labels (e.g. ``".png"``, ``"_gtFine_labelTrainIds.png"``).

    Returns:
        (image_path, label_path) pairs sorted by image path.

    Raises:
        FileNotFoundError: a folder is missing, or some images have no label (a few are named).
        ValueError: no image ends with ``img_suffix``.
    """
    img_dir, ann_dir = Path(img_dir), Path(ann_dir)
    _require_dir(img_dir, "image folder")
    _require_dir(ann_dir, "label folder")
    images = _files_with_suffix(img_dir, img_suffix)
    if not images:
        raise ValueError(
            f"no images ending in {img_suffix!r} under {img_dir}; check the folder and the "
            "image suffix"
        )
    labels = _files_with_suffix(ann_dir, seg_suffix)
    missing = sorted(key for key in images if key not in labels)
    if missing:
        names = ", ".join(images[k].name for k in missing[:5])
        raise FileNotFoundError(
            f"{len(missing)} of {len(images)} images under {img_dir} have no label ending in "
            f"{seg_suffix!r} under {ann_dir} (e.g. {names}); add the labels (for raw Cityscapes"
            " or COCO-Stuff labels run 'aucseg convert-labels') or remove those images"
        )
    return [(images[k], labels[k]) for k in sorted(images)]


def apply_label_convention(
    label: np.ndarray, reduce_zero_label: bool, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """Apply mmseg's ``reduce_zero_label``: 0 -> ignore, every other id minus 1, ignore kept.

    Args:
        label: (H, W) int64 stored ids.
        reduce_zero_label: whether to apply the shift (ADE20K); otherwise ``label`` is returned.
        ignore_index: the ignore value (255).

    Returns:
        (H, W) int64 label map.
    """
    if not reduce_zero_label:
        return label
    out = label - 1
    out[(label == 0) | (label == ignore_index)] = ignore_index
    return out


class SegDataset(Dataset):
    """Base class: a list of (image, label) file pairs with class names and a palette.

    Args:
        samples: (image_path, label_path) pairs (see :func:`scan_pairs`).
        classes: class names; their number is ``num_classes``.
        palette: (C, 3) RGB colours; ``None`` -> the class's ``PALETTE`` or a random one.
        reduce_zero_label: apply the ADE20K convention (0 -> 255, others -1).
        transforms: callable applied to each item dict (e.g. a training pipeline).
        check_labels: raise on label values outside ``[0, C-1] ∪ {255}`` (cheap, vectorised).
    """

    CLASSES: ClassVar[tuple[str, ...]] = ()
    PALETTE: ClassVar[np.ndarray | None] = None
    SPLITS: ClassVar[tuple[str, ...]] = ()
    # Pipeline settings of the official configs: img_scale is mmseg's (long, short) side bound,
    # crop_size is (h, w); test images are resized to fit test_img_scale, then to a multiple of
    # test_size_divisor when it is set.
    TRAIN_IMG_SCALE: ClassVar[tuple[int, int]] = (2048, 512)
    CROP_SIZE: ClassVar[tuple[int, int]] = (512, 512)
    TEST_IMG_SCALE: ClassVar[tuple[int, int]] = (2048, 512)
    TEST_SIZE_DIVISOR: ClassVar[int | None] = 32

    def __init__(
        self,
        samples: Sequence[tuple[Path, Path]],
        classes: Sequence[str],
        palette: np.ndarray | Sequence[Sequence[int]] | None = None,
        reduce_zero_label: bool = False,
        transforms: Transform | None = None,
        check_labels: bool = True,
    ) -> None:
        if not samples:
            raise ValueError(f"{type(self).__name__} got an empty sample list; nothing to load")
        if not classes:
            raise ValueError(f"{type(self).__name__} needs at least one class name, got none")
        if transforms is not None and not callable(transforms):
            raise TypeError(f"transforms must be callable (sample -> sample), got {transforms!r}")
        self.samples: list[tuple[Path, Path]] = [(Path(i), Path(a)) for i, a in samples]
        self._classes = tuple(str(c) for c in classes)
        self._palette = self._resolve_palette(palette, len(self._classes))
        self.reduce_zero_label = bool(reduce_zero_label)
        self.transforms = transforms
        self.check_labels = check_labels
        self.ignore_index = IGNORE_INDEX

    def _resolve_palette(
        self, palette: np.ndarray | Sequence[Sequence[int]] | None, num_classes: int
    ) -> np.ndarray:
        if palette is None:
            palette = self.PALETTE if self.PALETTE is not None else default_palette(num_classes)
        arr = np.asarray(palette)
        if arr.shape != (num_classes, 3) or arr.min() < 0 or arr.max() > 255:
            raise ValueError(
                f"palette must be {num_classes} RGB triples in [0, 255] (one per class), "
                f"got an array of shape {arr.shape}"
            )
        return arr.astype(np.uint8)

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, index = train id."""
        return self._classes

    @property
    def num_classes(self) -> int:
        """Number of classes C (ids 0..C-1; 255 is ignore)."""
        return len(self._classes)

    @property
    def palette(self) -> np.ndarray:
        """(C, 3) uint8 RGB colour of each class."""
        return self._palette

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> Sample:
        """Load item ``index`` without transforms (label convention applied and checked)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        image_path, label_path = self.samples[index]
        image = read_image(image_path)
        label = apply_label_convention(read_label(label_path), self.reduce_zero_label)
        if image.shape[:2] != label.shape:
            raise ValueError(
                f"image {image_path} is {image.shape[0]}x{image.shape[1]} but its label "
                f"{label_path} is {label.shape[0]}x{label.shape[1]}; they must match"
            )
        if self.check_labels:
            self._check_range(label, label_path)
        return {
            "image": image,
            "label": label,
            "image_path": str(image_path),
            "label_path": str(label_path),
        }

    def _check_range(self, label: np.ndarray, label_path: Path) -> None:
        bad = ((label < 0) | (label >= self.num_classes)) & (label != self.ignore_index)
        if bad.any():
            values = np.unique(label[bad])
            shown = ", ".join(str(v) for v in values[:10]) + (" ..." if len(values) > 10 else "")
            zero = " after reduce_zero_label" if self.reduce_zero_label else ""
            raise ValueError(
                f"label file {label_path} holds values {shown}{zero} outside the "
                f"{self.num_classes} classes of {type(self).__name__} (allowed: 0.."
                f"{self.num_classes - 1} and {self.ignore_index} = ignore); raw Cityscapes/"
                "COCO-Stuff ids must be converted with 'aucseg convert-labels'"
            )

    def __getitem__(self, index: int) -> Sample:
        sample = self.load(index)
        return self.transforms(sample) if self.transforms is not None else sample

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_samples={len(self)}, num_classes={self.num_classes}, "
            f"reduce_zero_label={self.reduce_zero_label})"
        )


def _check_split(cls: type[SegDataset], split: str) -> None:
    if split not in cls.SPLITS:
        raise ValueError(f"{cls.__name__} split must be one of {list(cls.SPLITS)}, got {split!r}")


def _check_root(root: str | Path, cls: type[SegDataset]) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{cls.__name__} root not found: {root}; pass the folder that holds the dataset "
            "layout (see the README)"
        )
    return root


class ADE20KDataset(SegDataset):
    """ADE20K / SceneParsing (150 classes): ``root/{images,annotations}/{split}``, .jpg/.png.

    ``root`` is the ``ADEChallengeData2016`` folder. Stored ids are 0 (other) and 1..150; with
    ``reduce_zero_label`` they become 255 and 0..149.
    """

    CLASSES = ADE20K_CLASSES
    PALETTE = ADE20K_PALETTE
    SPLITS = ("training", "validation")

    def __init__(
        self,
        root: str | Path,
        split: str = "training",
        transforms: Transform | None = None,
        check_labels: bool = True,
    ) -> None:
        _check_split(type(self), split)
        root = _check_root(root, type(self))
        samples = scan_pairs(root / "images" / split, root / "annotations" / split, ".jpg", ".png")
        super().__init__(samples, self.CLASSES, None, True, transforms, check_labels)


class CityscapesDataset(SegDataset):
    """Cityscapes (19 classes): ``root/leftImg8bit/{split}/<city>/*_leftImg8bit.png`` with
    ``root/gtFine/{split}/<city>/*_gtFine_labelTrainIds.png`` (255 = ignore)."""

    CLASSES = CITYSCAPES_CLASSES
    PALETTE = CITYSCAPES_PALETTE
    SPLITS = ("train", "val")
    TRAIN_IMG_SCALE = (2048, 1024)
    CROP_SIZE = (1024, 1024)
    TEST_IMG_SCALE = (2048, 1024)
    TEST_SIZE_DIVISOR = None

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transforms: Transform | None = None,
        check_labels: bool = True,
    ) -> None:
        _check_split(type(self), split)
        root = _check_root(root, type(self))
        samples = scan_pairs(
            root / "leftImg8bit" / split,
            root / "gtFine" / split,
            "_leftImg8bit.png",
            "_gtFine_labelTrainIds.png",
        )
        super().__init__(samples, self.CLASSES, None, False, transforms, check_labels)


class COCOStuffDataset(SegDataset):
    """COCO-Stuff164k (171 classes): ``root/images/{split}/*.jpg`` with
    ``root/annotations/{split}/*_labelTrainIds.png`` (255 = ignore)."""

    CLASSES = COCO_STUFF_CLASSES
    PALETTE = COCO_STUFF_PALETTE
    SPLITS = ("train2017", "val2017")

    def __init__(
        self,
        root: str | Path,
        split: str = "train2017",
        transforms: Transform | None = None,
        check_labels: bool = True,
    ) -> None:
        _check_split(type(self), split)
        root = _check_root(root, type(self))
        samples = scan_pairs(
            root / "images" / split, root / "annotations" / split, ".jpg", "_labelTrainIds.png"
        )
        super().__init__(samples, self.CLASSES, None, False, transforms, check_labels)


class FolderDataset(SegDataset):
    """A user's own dataset: an image folder and a label folder, paired by relative file name.

    Args:
        img_dir: folder of images (searched recursively).
        ann_dir: folder of single-channel label maps (ids as pixel values, 255 = ignore).
        classes: class names, or their number (names become ``"class_0"``, ...).
        img_suffix: image file-name ending. seg_suffix: label file-name ending.
        reduce_zero_label: stored 0 means "ignore" and ids start at 1 (ADE20K style).
        palette: (C, 3) RGB colours; default a fixed random palette.
        transforms: callable applied to each item dict.
        check_labels: raise on label values outside ``[0, C-1] ∪ {255}``.
    """

    def __init__(
        self,
        img_dir: str | Path,
        ann_dir: str | Path,
        classes: Sequence[str] | int,
        img_suffix: str = ".jpg",
        seg_suffix: str = ".png",
        reduce_zero_label: bool = False,
        palette: np.ndarray | Sequence[Sequence[int]] | None = None,
        transforms: Transform | None = None,
        check_labels: bool = True,
    ) -> None:
        if isinstance(classes, int):
            if classes < 1:
                raise ValueError(f"classes must be names or a positive count, got {classes}")
            classes = [f"class_{i}" for i in range(classes)]
        elif isinstance(classes, str):
            raise TypeError(
                f"classes must be a list of names or a count, got the string {classes!r}"
            )
        samples = scan_pairs(img_dir, ann_dir, img_suffix, seg_suffix)
        super().__init__(samples, classes, palette, reduce_zero_label, transforms, check_labels)


DATASETS: dict[str, type[SegDataset]] = {
    "ade20k": ADE20KDataset,
    "cityscapes": CityscapesDataset,
    "coco_stuff164k": COCOStuffDataset,
    "folder": FolderDataset,
}


def build_dataset(
    name: str,
    root: str | Path,
    split: str,
    transforms: Transform | None = None,
    **kwargs: Any,
) -> SegDataset:
    """Build a dataset by registry name.

    Args:
        name: one of :data:`DATASETS` ("ade20k", "cityscapes", "coco_stuff164k", "folder").
        root: folder holding the dataset layout.
        split: a split of that dataset (e.g. "training" for ADE20K). For "folder" any name;
            it fills ``{split}`` in ``img_dir``/``ann_dir``.
        transforms: callable applied to each item.
        **kwargs: for "folder": ``classes`` (required), ``img_dir`` (default
            ``"images/{split}"``) and ``ann_dir`` (default ``"annotations/{split}"``), both
            relative to ``root``, and the other :class:`FolderDataset` arguments; for the
            others: ``check_labels``.

    Returns:
        The dataset.

    Raises:
        ValueError: unknown name or split (the valid ones are listed).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {sorted(DATASETS)}")
    if name != "folder":
        unknown = sorted(set(kwargs) - {"check_labels"})
        if unknown:
            raise ValueError(
                f"dataset {name!r} takes no options {unknown}; only check_labels (the other "
                "options belong to the 'folder' dataset)"
            )
        return DATASETS[name](root, split, transforms=transforms, **kwargs)
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string, got {split!r}")
    if "classes" not in kwargs:
        raise ValueError("the 'folder' dataset needs classes=[names...] (or a class count)")
    root = Path(root)
    img_dir = root / str(kwargs.pop("img_dir", "images/{split}")).format(split=split)
    ann_dir = root / str(kwargs.pop("ann_dir", "annotations/{split}")).format(split=split)
    return FolderDataset(img_dir, ann_dir, transforms=transforms, **kwargs)
