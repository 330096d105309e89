"""Predict label maps for image files and render them as colour masks and overlays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from aucseg.data.classes import default_palette
from aucseg.data.io import read_image
from aucseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from aucseg.data.transforms import rescale_size as fit_to_scale
from aucseg.engine.inference import inference

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "colorize",
    "default_palette",
    "overlay",
    "predict_images",
    "preprocess",
    "read_rgb",
    "rescale_size",
    "write_rgb",
]


def _as_palette(palette: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    pal = np.asarray(palette)
    if pal.ndim != 2 or pal.shape[1] != 3 or pal.shape[0] < 1:
        raise ValueError(f"palette must be (num_classes, 3) RGB values, got shape {pal.shape}")
    if pal.min() < 0 or pal.max() > 255:
        raise ValueError(f"palette values must lie in [0, 255], got [{pal.min()}, {pal.max()}]")
    return pal.astype(np.uint8)


def colorize(label: np.ndarray | torch.Tensor, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """Map class ids to RGB colours; ids outside the palette (e.g. 255 = ignore) are black.

    Shape:
        ``(H, W)`` int -> ``(H, W, 3)`` uint8.

    Raises:
        ValueError: ``label`` is not 2-D or the palette is not ``(C, 3)``.
    """
    if isinstance(label, torch.Tensor):
        label = label.detach().cpu().numpy()
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be (H, W), got shape {label.shape}")
    pal = _as_palette(palette)
    lut = np.zeros((len(pal) + 1, 3), dtype=np.uint8)  # last row: black for unknown ids
    lut[: len(pal)] = pal
    ids = label.astype(np.int64)
    ids = np.where((ids >= 0) & (ids < len(pal)), ids, len(pal))
    return lut[ids]


def overlay(image_rgb: np.ndarray, color_mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend ``(1 - alpha) * image + alpha * mask`` (mmseg ``show_result`` opacity).

    Shape:
        ``(H, W, 3)`` uint8 twice -> ``(H, W, 3)`` uint8.

    Raises:
        ValueError: shapes differ or ``alpha`` outside ``[0, 1]``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if image_rgb.shape != color_mask.shape or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(
            f"image {image_rgb.shape} and mask {color_mask.shape} must both be (H, W, 3)"
        )
    out = image_rgb.astype(np.float32) * (1.0 - alpha) + color_mask.astype(np.float32) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB (:func:`aucseg.data.io.read_image`).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file is corrupt or not an image.
    """
    return read_image(path)


def write_rgb(path: str | Path, image_rgb: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` uint8 RGB image (PNG by suffix), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"OpenCV could not write {str(path)!r}")
    return path


def rescale_size(
    height: int, width: int, img_scale: tuple[int, int] | None, size_divisor: int | None
) -> tuple[int, int]:
    """Test-time size of mmseg ``Resize(keep_ratio=True)`` then ``ResizeToMultiple(ceil)``.

    The scale factor is ``min(max(img_scale) / max(h, w), min(img_scale) / min(h, w))`` and the
    new size ``int(side * factor + 0.5)``; then each side is rounded up to ``size_divisor``.

    Returns:
        ``(new_height, new_width)``.
    """
    if img_scale is not None:
        height, width = fit_to_scale((height, width), img_scale)
    if size_divisor is not None:
        d = int(size_divisor)
        height, width = -(-height // d) * d, -(-width // d) * d
    return height, width


def preprocess(
    image_rgb: np.ndarray,
    img_scale: tuple[int, int] | None = None,
    size_divisor: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Resize (bilinear, keep ratio) and normalise an RGB image into a ``(1, 3, h, w)`` tensor."""
    h, w = image_rgb.shape[:2]
    nh, nw = rescale_size(h, w, img_scale, size_divisor)
    if (nh, nw) != (h, w):
        image_rgb = cv2.resize(image_rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    x = (image_rgb.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def _set_nmf_seed(
    model: nn.Module, seed: int | None, device: torch.device
) -> torch.Generator | None:
    """Give the model a seeded NMF generator when :mod:`aucseg.models` supports it.

    Returns:
        The generator (reseed it per image), or None when ``seed`` is None or unsupported.
    """
    if seed is None:
        return None
    try:
        from aucseg.models import set_nmf_generator  # type: ignore[attr-defined]
    except ImportError:
        return None
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    set_nmf_generator(model, generator)
    return generator


def _clear_nmf_seed(model: nn.Module, generator: torch.Generator | None) -> None:
    """Hand NMF back to the global RNG (the official behaviour) after seeded inference."""
    if generator is not None:
        from aucseg.models import set_nmf_generator  # type: ignore[attr-defined]

        set_nmf_generator(model, None)


def predict_images(
    model: nn.Module,
    image_paths: Sequence[str | Path],
    out_dir: str | Path,
    palette: Sequence[Sequence[int]],
    img_scale: tuple[int, int] | None = None,
    size_divisor: int | None = None,
    mode: str = "whole",
    crop_size: int | tuple[int, int] | None = None,
    stride: int | tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    nmf_seed: int | None = 0,
    progress: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> list[Path]:
    """Segment image files; write ``<stem>_mask.png`` (colour) and ``<stem>_overlay.png``.

    Each image is read (BGR -> RGB), resized as in :func:`rescale_size`, normalised, segmented
    (softmax argmax at the original size) and rendered with ``palette``. The NMF generator, when
    the model has one, is reseeded with ``nmf_seed`` before every image and released afterwards.

    Returns:
        The written paths, mask then overlay for each image, in input order.

    Raises:
        FileNotFoundError: an image cannot be read.
        ValueError: two inputs share a file stem (their outputs would overwrite each other).
    """
    paths = [Path(p) for p in image_paths]
    stems = [p.stem for p in paths]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise ValueError(f"input images share the file stems {dupes}; rename or predict apart")
    pal = _as_palette(palette)
    device = torch.device(device)
    out_dir = Path(out_dir)
    was_training = model.training
    model.to(device).eval()
    generator = _set_nmf_seed(model, nmf_seed, device)
    written: list[Path] = []
    try:
        with torch.inference_mode():
            for path in tqdm(paths, desc="predict", disable=not progress):
                rgb = read_rgb(path)
                if generator is not None:
                    generator.manual_seed(int(nmf_seed))
                x = preprocess(rgb, img_scale, size_divisor, mean, std).to(device)
                probs = inference(model, x, rgb.shape[:2], mode, crop_size, stride)
                pred = probs.argmax(dim=1)[0].cpu().numpy()
                mask = colorize(pred, pal)
                written.append(write_rgb(out_dir / f"{path.stem}_mask.png", mask))
                written.append(write_rgb(out_dir / f"{path.stem}_overlay.png", overlay(rgb, mask)))
    finally:
        _clear_nmf_seed(model, generator)
        model.train(was_training)
    return written
