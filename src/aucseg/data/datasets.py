"""Semantic-segmentation datasets: ADE20K, Cityscapes, COCO-Stuff164k and a generic folder.

Every dataset is a list of (image, label) file pairs found at construction time. An item is a
dict ``{"image": (H, W, 3) uint8 RGB, "label": (H, W) int64, "image_path", "label_path"}`` with
the dataset's label convention applied (ignore = 255; ADE20K: ``reduce_zero_label``, i.e. 0 ->
255 and every other id minus 1), then passed through ``transforms`` when given.

Every dataset class takes ``(root, split, transforms=None, ...)``: the engine fills those three,
the rest are the dataset's options (plain-annotated, defaults in the signature), checked by
:func:`build_dataset` against the signature (:func:`dataset_options`).
"""

from __future__ import annotations

import inspect
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
from aucseg.data.io import MissingFileError, read_image, read_label
from aucseg.errors import InputError

IGNORE_INDEX = 255
#: Constructor arguments the engine fills in; every other argument is a dataset option.
DATASET_INPUTS: tuple[str, ...] = ("root", "split", "transforms")
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
    raise MissingFileError(f"{what} not found: {path}{hint}")


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
        MissingFileError: a folder is missing, or some images have no label (a few are named).
        InputError: no image ends with ``img_suffix``.
    """
    img_dir, ann_dir = Path(img_dir), Path(ann_dir)
    _require_dir(img_dir, "image folder")
    _require_dir(ann_dir, "label folder")
    images = _files_with_suffix(img_dir, img_suffix)
    if not images:
        raise InputError(
            f"no images ending in {img_suffix!r} under {img_dir}; check the folder and the "
            "image suffix"
        )
    labels = _files_with_suffix(ann_dir, seg_suffix)
    missing = sorted(key for key in images if key not in labels)
    if missing:
        names = ", ".join(images[k].name for k in missing[:5])
        raise MissingFileError(
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
        palette: (C, 3) RGB colours; ``None`` -> the class's ``PALETTE`` or a generated one.
        reduce_zero_label: apply the ADE20K convention (0 -> 255, others -1).
        transforms: callable applied to each item dict (e.g. a training pipeline).
        check_labels: raise on label values outside ``[0, C-1] ∪ {255}`` (cheap, vectorised).

    Raises:
        InputError: no samples, no or duplicate class names, or a palette of the wrong size.
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
    #: How to fix label values outside the classes (the end of the error message).
    LABEL_FIX: ClassVar[str] = (
        "raw Cityscapes/COCO-Stuff ids must be converted with 'aucseg convert-labels'"
    )

    def __init__(
        self,
        samples: Sequence[tuple[Path, Path]],
        classes: Sequence[str],
        palette: np.ndarray | Sequence[Sequence[int]] | None = None,
        reduce_zero_label: bool = False,
        transforms: Transform | None = None,
        check_labels: bool = True,
    ) -> None:
        name = type(self).__name__
        if not samples:
            raise InputError(f"{name} got an empty sample list; nothing to load")
        if not classes:
            raise InputError(f"{name} needs at least one class name, got none")
        if len(set(classes)) != len(classes):
            dupes = sorted({c for c in classes if list(classes).count(c) > 1})
            raise InputError(f"{name} class names must be distinct; repeated: {dupes}")
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
        try:
            arr = np.asarray(palette, dtype=np.int64)
        except (TypeError, ValueError):
            arr = np.zeros((0,), np.int64)  # ragged or non-numeric: reported below
        if arr.shape != (num_classes, 3) or arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
            raise InputError(
                f"palette must be {num_classes} RGB triples in [0, 255] (one per class), got an "
                f"array of shape {arr.shape}; give one colour per class or leave palette unset "
                "for generated colours"
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
            raise InputError(
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

    def label_fix(self, max_value: int) -> str:
        """The fix for label values up to ``max_value`` outside the classes (error message)."""
        del max_value
        return self.LABEL_FIX

    def _check_range(self, label: np.ndarray, label_path: Path) -> None:
        bad = ((label < 0) | (label >= self.num_classes)) & (label != self.ignore_index)
        if bad.any():
            values = np.unique(label[bad])
            shown = ", ".join(str(v) for v in values[:10]) + (" ..." if len(values) > 10 else "")
            zero = " after reduce_zero_label" if self.reduce_zero_label else ""
            raise InputError(
                f"label file {label_path} holds values {shown}{zero} outside the "
                f"{self.num_classes} classes of {type(self).__name__} (allowed: 0.."
                f"{self.num_classes - 1} and {self.ignore_index} = ignore); "
                f"{self.label_fix(int(values.max()))}"
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
        raise InputError(f"{cls.__name__} split must be one of {list(cls.SPLITS)}, got {split!r}")


def _check_root(root: str | Path, cls: type[SegDataset]) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(
            f"{cls.__name__} root not found: {root}; pass the folder that holds the dataset "
            "layout (see the README)"
        )
    return root


class BuiltinDataset(SegDataset):
    """A benchmark dataset: its layout is class constants, its constructor takes the root.

    Subclasses set ``CLASSES``, ``PALETTE``, ``SPLITS`` (the first is the default split) and
    ``LAYOUT = (image folder, label folder, image suffix, label suffix)`` below ``root/``, each
    folder holding one sub-folder per split, plus ``REDUCE_ZERO_LABEL``.

    Args:
        root: the dataset folder. split: one of ``SPLITS`` (default the first).
        transforms: callable applied to each item. check_labels: see :class:`SegDataset`.
    """

    LAYOUT: ClassVar[tuple[str, str, str, str]] = ("images", "annotations", ".jpg", ".png")
    REDUCE_ZERO_LABEL: ClassVar[bool] = False

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        transforms: Transform | None = None,
        check_labels: bool = True,
    ) -> None:
        split = self.SPLITS[0] if split is None else split
        _check_split(type(self), split)
        root = _check_root(root, type(self))
        img_dir, ann_dir, img_suffix, seg_suffix = self.LAYOUT
        samples = scan_pairs(root / img_dir / split, root / ann_dir / split, img_suffix, seg_suffix)
        super().__init__(
            samples, self.CLASSES, None, self.REDUCE_ZERO_LABEL, transforms, check_labels
        )


class ADE20KDataset(BuiltinDataset):
    """ADE20K / SceneParsing (150 classes): ``root/{images,annotations}/{split}``, .jpg/.png.

    ``root`` is the ``ADEChallengeData2016`` folder. Stored ids are 0 (other) and 1..150; with
    ``reduce_zero_label`` they become 255 and 0..149.
    """

    CLASSES = ADE20K_CLASSES
    PALETTE = ADE20K_PALETTE
    SPLITS = ("training", "validation")
    LABEL_FIX = "ADE20K labels store 0 (other) and 1..150; re-extract the annotations"
    REDUCE_ZERO_LABEL = True


class CityscapesDataset(BuiltinDataset):
    """Cityscapes (19 classes): ``root/leftImg8bit/{split}/<city>/*_leftImg8bit.png`` with
    ``root/gtFine/{split}/<city>/*_gtFine_labelTrainIds.png`` (255 = ignore)."""

    CLASSES = CITYSCAPES_CLASSES
    PALETTE = CITYSCAPES_PALETTE
    SPLITS = ("train", "val")
    TRAIN_IMG_SCALE = (2048, 1024)
    CROP_SIZE = (1024, 1024)
    TEST_IMG_SCALE = (2048, 1024)
    TEST_SIZE_DIVISOR = None
    LAYOUT = ("leftImg8bit", "gtFine", "_leftImg8bit.png", "_gtFine_labelTrainIds.png")


class COCOStuffDataset(BuiltinDataset):
    """COCO-Stuff164k (171 classes): ``root/images/{split}/*.jpg`` with
    ``root/annotations/{split}/*_labelTrainIds.png`` (255 = ignore)."""

    CLASSES = COCO_STUFF_CLASSES
    PALETTE = COCO_STUFF_PALETTE
    SPLITS = ("train2017", "val2017")
    LAYOUT = ("images", "annotations", ".jpg", "_labelTrainIds.png")


def _class_names(classes: list[str] | int) -> list[str]:
    """Class names from a list of names or a count (``class_0``, ``class_1``, ...)."""
    if isinstance(classes, bool) or not isinstance(classes, int | Sequence):
        raise TypeError(f"classes must be a list of names or a count, got {classes!r}")
    if isinstance(classes, str):
        raise TypeError(f"classes must be a list of names or a count, got the string {classes!r}")
    if isinstance(classes, int):
        if classes < 1:
            raise InputError(f"classes must be names or a positive count, got {classes}")
        return [f"class_{i}" for i in range(classes)]
    return [str(c) for c in classes]


class FolderDataset(SegDataset):
    """A user's own dataset, laid out as MMSegmentation's ``CustomDataset``.

    Images ``root/img_dir/<name><img_suffix>`` are paired with labels
    ``root/ann_dir/<name><seg_map_suffix>`` (searched recursively; ``<name>`` may hold
    sub-folders); ``{split}`` in ``img_dir``/``ann_dir`` is replaced by the split name. Labels
    are single-channel maps of class ids (255 = ignore).

    Args:
        root: dataset folder; ``img_dir`` and ``ann_dir`` are relative to it.
        split: split name (any non-empty string, e.g. "train", "val").
        transforms: callable applied to each item dict.
        classes: class names, or their number (names become ``"class_0"``, ...).
        palette: one RGB triple per class; default generated colours.
        img_dir: image folder below root. ann_dir: label folder below root.
        img_suffix: image file-name ending. seg_map_suffix: label file-name ending.
        reduce_zero_label: stored 0 means "unlabelled" (-> 255) and ids start at 1 (ADE20K).
        check_labels: raise on label values outside ``[0, C-1] ∪ {255}``.

    Raises:
        InputError: an empty split, bad classes or palette, missing folders or labels.
        TypeError: classes is neither a list of names nor an int.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        transforms: Transform | None = None,
        *,
        classes: list[str] | int,
        palette: list[list[int]] | None = None,
        img_dir: str = "images/{split}",
        ann_dir: str = "annotations/{split}",
        img_suffix: str = ".jpg",
        seg_map_suffix: str = ".png",
        reduce_zero_label: bool = False,
        check_labels: bool = True,
    ) -> None:
        if not isinstance(split, str) or not split:
            raise InputError(f"split must be a non-empty string, got {split!r}")
        names = _class_names(classes)
        root = _check_root(root, type(self))
        images = root / img_dir.replace("{split}", split)
        labels = root / ann_dir.replace("{split}", split)
        samples = scan_pairs(images, labels, img_suffix, seg_map_suffix)
        super().__init__(samples, names, palette, reduce_zero_label, transforms, check_labels)

    def label_fix(self, max_value: int) -> str:
        """The fix for label values up to ``max_value`` outside the classes (error message)."""
        if self.reduce_zero_label:
            return (
                f"set classes to {max_value + 1} names (or a count), or check the labels "
                "(reduce_zero_label is on: stored ids 1..C become 0..C-1)"
            )
        return (
            f"set classes to {max_value + 1} names (or a count), or reduce_zero_label=true "
            "when stored 0 marks unlabelled pixels and classes start at 1"
        )


DATASETS: dict[str, type[SegDataset]] = {
    "ade20k": ADE20KDataset,
    "cityscapes": CityscapesDataset,
    "coco_stuff164k": COCOStuffDataset,
    "folder": FolderDataset,
}


def dataset_options(name: str) -> dict[str, Any]:
    """The options of dataset ``name`` (its constructor minus root, split, transforms) with
    their defaults; ``inspect.Parameter.empty`` marks a required one.

    Raises:
        InputError: unknown name (the valid ones are listed).
    """
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; valid names: {sorted(DATASETS)}")
    params = inspect.signature(DATASETS[name]).parameters.values()
    return {p.name: p.default for p in params if p.name not in DATASET_INPUTS}


def build_dataset(
    name: str,
    root: str | Path,
    split: str,
    transforms: Transform | None = None,
    **options: Any,
) -> SegDataset:
    """Build a dataset by registry name.

    Args:
        name: one of :data:`DATASETS` ("ade20k", "cityscapes", "coco_stuff164k", "folder").
        root: folder holding the dataset layout.
        split: a split of that dataset (e.g. "training" for ADE20K); any name for "folder".
        transforms: callable applied to each item.
        **options: the dataset's own arguments (:func:`dataset_options`); for "folder":
            ``classes`` (required), ``palette``, ``img_dir``, ``ann_dir``, ``img_suffix``,
            ``seg_map_suffix``, ``reduce_zero_label``; for every dataset ``check_labels``.

    Returns:
        The dataset.

    Raises:
        InputError: unknown name, split or option, or a missing required option (the
            accepted ones are listed).
    """
    accepted = dataset_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(
            f"dataset {name!r} takes no option {unknown[0]!r}; accepted: {sorted(accepted)}"
        )
    required = [k for k, v in accepted.items() if v is inspect.Parameter.empty]
    missing = [k for k in required if k not in options]
    if missing:
        raise InputError(
            f"dataset {name!r} needs the option {missing[0]!r} (required: {required}); e.g. "
            "classes=[names...] or a class count for 'folder'"
        )
    return DATASETS[name](root, split, transforms, **options)
