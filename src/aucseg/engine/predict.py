"""Predict label maps for images and render them as label PNGs, colour masks and overlays.

The model input comes from the same test pipeline that ``aucseg test`` applies to the
validation set (:func:`aucseg.data.transforms.build_test_pipeline`), so one image gives the
same model input and the same prediction through ``aucseg test``, ``aucseg predict`` and
:func:`predict_image`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from aucseg.data.classes import default_palette
from aucseg.data.io import read_image
from aucseg.engine.inference import inference, nmf_generator
from aucseg.errors import InputError
from aucseg.fileio import write_bytes_atomic
from aucseg.metrics.plots import save_figure
from aucseg.models import set_nmf_generator

__all__ = [
    "IMAGE_SUFFIXES",
    "colorize",
    "default_palette",
    "find_images",
    "model_input",
    "overlay",
    "predict_image",
    "predict_images",
    "read_rgb",
    "write_legend",
    "write_rgb",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _as_palette(palette: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    pal = np.asarray(palette)
    if pal.ndim != 2 or pal.shape[1] != 3 or pal.shape[0] < 1:
        raise InputError(f"palette must be (num_classes, 3) RGB values, got shape {pal.shape}")
    if pal.min() < 0 or pal.max() > 255:
        raise InputError(f"palette values must lie in [0, 255], got [{pal.min()}, {pal.max()}]")
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


def _encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise InputError(f"OpenCV could not encode an image of shape {image.shape} as PNG")
    return buf.tobytes()


def write_rgb(path: str | Path, image_rgb: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` uint8 RGB image as PNG, atomically."""
    return write_bytes_atomic(path, _encode_png(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)))


def write_label_png(path: str | Path, label: np.ndarray) -> Path:
    """Write class ids as a single-channel PNG (uint8, or uint16 for more than 255 classes)."""
    dtype = np.uint8 if label.max(initial=0) < 256 else np.uint16
    return write_bytes_atomic(path, _encode_png(label.astype(dtype)))


def write_legend(
    path: str | Path, class_names: Sequence[str], palette: Sequence[Sequence[int]]
) -> Path:
    """A PNG legend: one colour swatch and name per class."""
    from matplotlib.figure import Figure  # heavy; only when a legend is drawn
    from matplotlib.patches import Patch

    pal = _as_palette(palette) / 255.0
    handles = [Patch(color=pal[i], label=f"{i}: {n}") for i, n in enumerate(class_names)]
    cols = len(handles) // 30 + 1
    fig = Figure(figsize=(3.2 * cols, 0.3 * (len(handles) / cols + 2)))
    fig.legend(handles=handles, loc="center", ncol=cols, frameon=False, fontsize=8)
    return save_figure(fig, path, dpi=100)


def find_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files of ``inputs``: files as given, folders searched recursively by suffix.

    Raises:
        FileNotFoundError: an input does not exist. InputError: nothing to segment.
    """
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            found.append(item)
        else:
            raise FileNotFoundError(f"input image or folder not found: {item}")
    if not found:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {list(inputs)}")
    return found


def model_input(image_rgb: np.ndarray, preprocess: Callable[[dict], dict]) -> torch.Tensor:
    """``(1, 3, h, w)`` model input of an RGB image through the test pipeline ``preprocess``."""
    return preprocess({"image": image_rgb})["image"][None]


def predict_image(
    model: nn.Module,
    image_rgb: np.ndarray,
    preprocess: Callable[[dict], dict],
    window: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    nmf_seed: int | None = 0,
) -> np.ndarray:
    """Class ids ``(H, W)`` of one RGB image at its original size (the Python inference API).

    Args:
        model: eval-mode segmentor.
        preprocess: the test pipeline, e.g. ``build_test_pipeline((2048, 512), 32)``.
        window: ``{"mode", "crop_size", "stride"}`` (default whole-image inference).
        nmf_seed: seed of the NMF bases (as ``aucseg test``), or None for the global RNG.
    """
    device = torch.device(device)
    x = model_input(image_rgb, preprocess).to(device)
    generator = nmf_generator(model, nmf_seed, device)
    try:
        with torch.inference_mode():
            probs = inference(model, x, image_rgb.shape[:2], **(window or {}))
    finally:
        if generator is not None:
            set_nmf_generator(model, None)
    return probs.argmax(dim=1)[0].cpu().numpy()


def _check_stems(paths: Sequence[Path]) -> None:
    stems = [p.stem for p in paths]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise InputError(f"input images share the file stems {dupes}; rename or predict apart")


def predict_images(
    model: nn.Module,
    image_paths: Sequence[str | Path],
    out_dir: str | Path,
    palette: Sequence[Sequence[int]],
    preprocess: Callable[[dict], dict],
    class_names: Sequence[str] | None = None,
    window: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    nmf_seed: int | None = 0,
    progress: bool = True,
) -> list[Path]:
    """Segment image files into ``out_dir``: ``<stem>_labels.png`` (class ids),
    ``<stem>_mask.png`` (colours), ``<stem>_overlay.png`` and one ``legend.png``.

    Returns:
        The written paths (per image: labels, mask, overlay; then the legend).

    Raises:
        InputError: two inputs share a file stem, or an image cannot be read.
    """
    paths = [Path(p) for p in image_paths]
    _check_stems(paths)
    pal, out_dir = _as_palette(palette), Path(out_dir)
    was_training = model.training
    model.to(device).eval()
    written: list[Path] = []
    try:
        for path in tqdm(paths, desc="predict", disable=not progress):
            rgb = read_rgb(path)
            pred = predict_image(model, rgb, preprocess, window, device, nmf_seed)
            mask = colorize(pred, pal)
            written.append(write_label_png(out_dir / f"{path.stem}_labels.png", pred))
            written.append(write_rgb(out_dir / f"{path.stem}_mask.png", mask))
            written.append(write_rgb(out_dir / f"{path.stem}_overlay.png", overlay(rgb, mask)))
    finally:
        model.train(was_training)
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(pal))]
    written.append(write_legend(out_dir / "legend.png", names, pal))
    return written
