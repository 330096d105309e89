"""Generated long-tail scenes in the Cityscapes or ADE20K folder layout.

Every class has its own colour, stripe texture (period, angle, contrast) and shape (rectangle,
ellipse or diamond), see :meth:`SyntheticStyle.create`. Class ``k`` (0-based rank) appears
``Poisson(λ·(k+1)^(-0.6a))`` times per image with a size whose area scales as ``(k+1)^(-0.4a)``,
so its expected pixel share follows a Zipf law ``∝ (k+1)^(-a)``; the ``rare_classes`` rarest
classes appear ``rare_factor`` times as often again, a step between the middle and the tail (so
the rank cut of ``aucseg stats`` finds exactly them as the tail). Class 0 is the background.
Shapes are painted from frequent to rare, so rare objects stay visible. A thin band at the
bottom of some images is ignore (255), like the Cityscapes ego vehicle. Generation is vectorised
per shape (no pixel loops): the default set (200 + 50 images of 128x256) is written in seconds.

The defaults are chosen so that a small model trained briefly on a CPU (the demo) learns every
head and middle class from its colour, while the tail, seen in about a tenth of the images, is
where long-tail methods differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "DEFAULT_RARE_FACTOR",
    "DEFAULT_ZIPF_A",
    "LAYOUTS",
    "SyntheticStyle",
    "default_rare_classes",
    "make_synthetic",
    "render_scene",
    "sample_label",
]

LAYOUTS = ("cityscapes", "ade20k")
_DEFAULT_CLASSES = {"cityscapes": 19, "ade20k": 150}
_IGNORE = 255
_CITIES = {"train": ("synthtown", "synthville"), "val": ("synthcity",)}


DEFAULT_ZIPF_A = 1.2
DEFAULT_RARE_FACTOR = 0.2


def default_rare_classes(num_classes: int) -> int:
    """The number of rare (tail) classes by default: the share of the official Cityscapes tail
    (7 of 19), at least 1, and at least 2 classes that are not rare."""
    return max(1, min(num_classes - 2, round(num_classes * 7 / 19)))


@dataclass(frozen=True)
class SyntheticStyle:
    """Per-class appearance (index C is the ignore style).

    Shape:
        colour (C+1, 3) float RGB in [0, 255]; period, angle, contrast (C+1,); shape (C,) int in
        {0: rectangle, 1: ellipse, 2: diamond}.
    """

    colour: np.ndarray
    period: np.ndarray
    angle: np.ndarray
    contrast: np.ndarray
    shape: np.ndarray

    @classmethod
    def create(cls, num_classes: int, seed: int = 0) -> SyntheticStyle:
        """Per-class styles: golden-angle hues with alternating saturation and stepped brightness
        (a distinct colour per class), a stripe texture of its own (period, angle, contrast) and
        a shape (rectangle, ellipse, diamond in turn). What separates the tail from the middle is
        then how often a class is seen, not how it looks: the setting of long-tail learning.

        Args:
            num_classes: C.
            seed: seed of the stripe periods, angles and contrasts.
        """
        rng = np.random.default_rng(seed + 7919)
        k = np.arange(num_classes)
        hue = ((k * 0.618033988749895) % 1.0 * 180).astype(np.uint8)  # OpenCV hue in [0, 180)
        sat = np.where(k % 2 == 0, 210, 110).astype(np.uint8)
        val = (100 + (k * 67) % 150).astype(np.uint8)
        hsv = np.stack([hue, sat, val], axis=-1)[None]
        colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0].astype(np.float32)
        colour = np.concatenate([colour, [[40.0, 40.0, 40.0]]])
        period = np.concatenate([rng.uniform(5.0, 14.0, num_classes), [8.0]])
        angle = np.concatenate([rng.uniform(0.0, np.pi, num_classes), [0.0]])
        contrast = np.concatenate([rng.uniform(25.0, 45.0, num_classes), [0.0]])
        shape = (k % 3).astype(np.int64)
        f32 = np.float32
        return cls(
            colour.astype(f32), period.astype(f32), angle.astype(f32), contrast.astype(f32), shape
        )


def sample_label(
    height: int,
    width: int,
    num_classes: int,
    zipf_a: float,
    rng: np.random.Generator,
    rare: int = 0,
    rare_factor: float = 1.0,
) -> np.ndarray:
    """Draw one label map: background class 0, then shapes of classes 1..C-1 by rank.

    Args:
        height, width: image size.
        num_classes: C (class k has expected pixel share ∝ (k+1)^-zipf_a).
        zipf_a: Zipf exponent (> 0); larger means a longer tail.
        rng: numpy random generator.
        rare: the ``rare`` rarest classes appear ``rare_factor`` times as often as the Zipf law
            says, a step that separates the tail from the middle.
        rare_factor: see ``rare`` (in (0, 1]).

    Returns:
        (H, W) uint8 labels in [0, C) plus 255 (ignore band).
    """
    label = np.zeros((height, width), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ranks = np.arange(1, num_classes, dtype=np.float64) + 1.0
    # Pixel share ∝ count x area ∝ rank^-(0.6a) x rank^-(0.4a) = rank^-a (up to occlusion).
    rel = ranks / ranks[0]
    rate = 2.0 * rel ** (-0.6 * zipf_a)
    if rare > 0:
        rate[-rare:] *= rare_factor
    counts = rng.poisson(rate)
    half = 0.32 * min(height, width) * rel ** (-0.2 * zipf_a) + 3.0
    for cls, n, size in zip(range(1, num_classes), counts, half, strict=True):
        for _ in range(int(n)):
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            ry, rx = size * rng.uniform(0.6, 1.4, 2)
            dy, dx = np.abs(yy - cy) / ry, np.abs(xx - cx) / rx
            kind = cls % 3
            if kind == 0:
                mask = (dy <= 1) & (dx <= 1)
            elif kind == 1:
                mask = dy * dy + dx * dx <= 1
            else:
                mask = dy + dx <= 1
            label[mask] = cls
    if rng.random() < 0.5:  # an ignore band at the bottom, like an ego vehicle
        label[height - int(rng.integers(1, max(2, height // 16))) :] = _IGNORE
    return label


def render_scene(label: np.ndarray, style: SyntheticStyle, rng: np.random.Generator) -> np.ndarray:
    """Paint a label map with the class styles, stripes and mild noise.

    Args:
        label: (H, W) uint8 labels in [0, C) or 255.
        style: per-class appearance.
        rng: numpy random generator (noise and global brightness).

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    num_classes = style.shape.shape[0]
    idx = np.where(label == _IGNORE, num_classes, label).astype(np.int64)
    height, width = label.shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = style.angle[idx]
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2.0 * np.pi / style.period[idx])
    image = style.colour[idx] + (style.contrast[idx] * np.sin(phase))[..., None]
    image = image * rng.uniform(0.85, 1.15) + rng.normal(0.0, 6.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _write_pair(image_path: Path, label_path: Path, image: np.ndarray, label: np.ndarray) -> None:
    """Write an RGB image (PNG or JPEG by suffix) and an 8-bit label PNG."""
    image_path.parent.mkdir(parents=True, exist_ok=True)
    label_path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(image_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {image_path}")
    if not cv2.imwrite(str(label_path), label):
        raise OSError(f"could not write {label_path}")


def _paths(root: Path, layout: str, split: str, index: int, num: int) -> tuple[Path, Path]:
    """Image and label paths of sample ``index`` of ``split`` ("train"/"val") in ``layout``."""
    if layout == "cityscapes":
        cities = _CITIES[split]
        city = cities[index * len(cities) // max(num, 1)]
        stem = f"{city}_{index // 100:06d}_{index % 100:06d}"
        return (
            root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
            root / "gtFine" / split / city / f"{stem}_gtFine_labelTrainIds.png",
        )
    folder, prefix = ("training", "ADE_train") if split == "train" else ("validation", "ADE_val")
    stem = f"{prefix}_{index + 1:08d}"
    return (
        root / "images" / folder / f"{stem}.jpg",
        root / "annotations" / folder / f"{stem}.png",
    )


def _check_arguments(
    layout: str, num_classes: int, num_train: int, num_val: int, height: int, width: int,
    zipf_a: float, rare: int, rare_factor: float,
) -> None:  # fmt: skip
    """Raise ValueError for arguments :func:`make_synthetic` cannot honour."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    max_classes = 254 if layout == "cityscapes" else 255
    if not 2 <= num_classes <= max_classes:
        raise ValueError(
            f"num_classes must lie in [2, {max_classes}] for {layout}, got {num_classes}"
        )
    if num_train < 0 or num_val < 0:
        raise ValueError(f"num_train and num_val must be >= 0, got {num_train} and {num_val}")
    if height < 16 or width < 16:
        raise ValueError(f"height and width must be >= 16 pixels, got {height}x{width}")
    if zipf_a <= 0:
        raise ValueError(f"zipf_a must be > 0, got {zipf_a}")
    if not 0 <= rare <= num_classes - 2:
        raise ValueError(f"rare_classes must lie in [0, {num_classes - 2}], got {rare}")
    if not 0 < rare_factor <= 1:
        raise ValueError(f"rare_factor must lie in (0, 1], got {rare_factor}")


def make_synthetic(
    root: str | Path,
    layout: str = "cityscapes",
    num_train: int = 200,
    num_val: int = 50,
    height: int = 128,
    width: int = 256,
    num_classes: int | None = None,
    zipf_a: float = DEFAULT_ZIPF_A,
    seed: int = 0,
    rare_classes: int | None = None,
    rare_factor: float = DEFAULT_RARE_FACTOR,
) -> Path:
    """Write a small long-tailed scene-parsing set to ``root`` in a real dataset layout.

    Args:
        root: output folder (created).
        layout: "cityscapes" (``leftImg8bit``/``gtFine``, train ids 0..C-1, 255 ignore) or
            "ade20k" (``images``/``annotations`` {training, validation}; label 0 = "other",
            classes written as 1..C).
        num_train, num_val: number of images per split.
        height, width: image size.
        num_classes: C; default 19 (cityscapes) or 150 (ade20k). At most 254 (cityscapes) or
            255 (ade20k) to fit 8-bit labels.
        zipf_a: Zipf exponent of the class pixel frequencies (> 0).
        seed: seed; the same arguments write identical files.
        rare_classes: the number of rarest classes that appear ``rare_factor`` times as often
            as the Zipf law says (default :func:`default_rare_classes`: 7 of 19, the size of the
            official Cityscapes tail, so ``aucseg stats`` finds them as the tail).
        rare_factor: see ``rare_classes`` (in (0, 1]).

    Returns:
        ``root`` as a Path. A ``synthetic.json`` beside the data records the arguments.

    Raises:
        ValueError: for an unknown layout or out-of-range sizes/counts.
    """
    num_classes = _DEFAULT_CLASSES.get(layout, 2) if num_classes is None else int(num_classes)
    rare = default_rare_classes(num_classes) if rare_classes is None else int(rare_classes)
    _check_arguments(
        layout, num_classes, num_train, num_val, height, width, zipf_a, rare, rare_factor
    )
    root = Path(root)
    style = SyntheticStyle.create(num_classes, seed)
    for split, num, offset in (("train", num_train, 0), ("val", num_val, 1)):
        rng = np.random.default_rng([seed, offset])
        for i in range(num):
            label = sample_label(height, width, num_classes, zipf_a, rng, rare, rare_factor)
            image = render_scene(label, style, rng)
            if layout == "ade20k":  # 0 = "other" (ignored via reduce_zero_label), classes 1..C
                label = np.where(label == _IGNORE, 0, label + 1).astype(np.uint8)
            _write_pair(*_paths(root, layout, split, i, num), image, label)
    meta = {
        "layout": layout,
        "num_train": num_train,
        "num_val": num_val,
        "height": height,
        "width": width,
        "num_classes": num_classes,
        "zipf_a": zipf_a,
        "seed": seed,
        "rare_classes": rare,
        "rare_factor": rare_factor,
    }
    (root / "synthetic.json").write_text(json.dumps(meta, indent=2) + "\n")
    return root
