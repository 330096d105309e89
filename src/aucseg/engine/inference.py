"""Whole-image and sliding-window inference with optional multi-scale + flip TTA.

Follows MMSegmentation 0.24.1 ``EncoderDecoder``:

* ``whole``: the model sees the full image; its logits (resized to the input size if the model
  returns another size) are resized bilinearly (``align_corners=False``) to ``out_size``.
* ``slide``: windows of ``crop_size`` every ``stride`` pixels, ``h_grids = max(H - crop_h +
  stride_h - 1, 0) // stride_h + 1`` (same for width), the last window shifted back to end at
  the border; logits are summed into a full-size map, divided by the per-pixel window count,
  then resized to ``out_size``. An image smaller than the crop is **not padded**: the window is
  clipped to the image (mmseg 0.24.1 ``slide_inference`` does the same).
* TTA: every (scale, flip) view gives softmax probabilities at ``out_size`` (flipped views are
  flipped back); :func:`inference` returns their mean, as mmseg ``aug_test`` does. Scales
  rescale the already normalised image bilinearly.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from aucseg.models import set_nmf_generator
from aucseg.models.layers import resize_bilinear

MODES: tuple[str, ...] = ("whole", "slide")
ACTIVATIONS: tuple[str, ...] = ("softmax", "sigmoid", "none")


def _pair(value: int | Sequence[int] | None, name: str) -> tuple[int, int]:
    if value is None:
        raise ValueError(f"{name} is required for mode='slide', e.g. {name}=(1024, 1024)")
    if isinstance(value, numbers.Integral):
        value = (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{name} must be a positive int or (height, width), got {value}")
    return value  # type: ignore[return-value]


def _check_image(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor) or not image.dtype.is_floating_point:
        raise TypeError(f"image must be a float tensor, got {type(image).__name__}")
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ValueError(
            f"image must be (1, 3, h, w), got {tuple(image.shape)}; add the batch dimension "
            "with image[None]"
        )


def _forward(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """Model logits resized to the input size, ``(1, C, h, w)`` float32."""
    logits = model(image)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 4:
        raise TypeError(
            "model(images) must return a (B, C, h, w) logits tensor, got "
            f"{getattr(logits, 'shape', type(logits).__name__)}"
        )
    return resize_bilinear(logits.float(), image.shape[-2:])


def whole_logits(
    model: nn.Module, image: torch.Tensor, out_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Logits of the whole image, resized bilinearly to ``out_size`` (default: input size).

    Shape:
        image ``(1, 3, h, w)`` -> ``(1, C, *out_size)``.
    """
    _check_image(image)
    logits = _forward(model, image)
    return resize_bilinear(logits, out_size) if out_size is not None else logits


def slide_windows(
    height: int, width: int, crop_size: tuple[int, int], stride: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """Sliding windows ``(y1, y2, x1, x2)`` of mmseg 0.24.1 ``slide_inference``.

    Example:
        A 1024x2048 image, crop 1024, stride 768 -> 1x3 windows at x = 0, 768, 1024.
    """
    (ch, cw), (sh, sw) = crop_size, stride
    h_grids = max(height - ch + sh - 1, 0) // sh + 1
    w_grids = max(width - cw + sw - 1, 0) // sw + 1
    windows = []
    for hi in range(h_grids):
        for wi in range(w_grids):
            y2, x2 = min(hi * sh + ch, height), min(wi * sw + cw, width)
            windows.append((max(y2 - ch, 0), y2, max(x2 - cw, 0), x2))
    return windows


def slide_logits(
    model: nn.Module,
    image: torch.Tensor,
    crop_size: int | tuple[int, int],
    stride: int | tuple[int, int],
    out_size: tuple[int, int] | None = None,
    num_classes: int | None = None,
) -> torch.Tensor:
    """Sliding-window logits averaged over overlapping windows, resized to ``out_size``.

    Args:
        model: ``forward(images) -> logits (B, C, h, w)``.
        image: normalised image ``(1, 3, h, w)``.
        crop_size, stride: window size and step, int or ``(h, w)``.
        out_size: output size (default: input size).
        num_classes: expected ``C`` (checked when given).

    Returns:
        ``(1, C, *out_size)`` float32 logits.

    Raises:
        ValueError: bad crop/stride or the model returns ``C != num_classes``.
    """
    _check_image(image)
    crop, step = _pair(crop_size, "crop_size"), _pair(stride, "stride")
    h, w = image.shape[-2:]
    total: torch.Tensor | None = None
    count = image.new_zeros((1, 1, h, w))
    for y1, y2, x1, x2 in slide_windows(h, w, crop, step):
        logits = _forward(model, image[:, :, y1:y2, x1:x2])
        if total is None:
            total = logits.new_zeros((1, logits.shape[1], h, w))
        total[:, :, y1:y2, x1:x2] += logits
        count[:, :, y1:y2, x1:x2] += 1
    assert total is not None  # slide_windows covers every pixel, so count >= 1 everywhere
    _check_classes(total, num_classes)
    total = total / count
    return resize_bilinear(total, out_size) if out_size is not None else total


def _check_classes(logits: torch.Tensor, num_classes: int | None) -> None:
    if num_classes is not None and logits.shape[1] != num_classes:
        raise ValueError(
            f"model returned {logits.shape[1]} channels but num_classes={num_classes}; "
            "check the checkpoint against the dataset"
        )


def inference_views(
    model: nn.Module,
    image: torch.Tensor,
    out_size: tuple[int, int],
    mode: str = "whole",
    crop_size: int | tuple[int, int] | None = None,
    stride: int | tuple[int, int] | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    num_classes: int | None = None,
) -> Iterator[torch.Tensor]:
    """Yield the logits of every TTA view at ``out_size``, flipped views flipped back.

    Order: for each scale, the plain view then (with ``flip``) the horizontally flipped one.

    Raises:
        ValueError: unknown mode, empty/non-positive scales, bad crop/stride.
    """
    _check_image(image)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    scales = [float(s) for s in scales]
    if not scales or min(scales) <= 0:
        raise ValueError(f"scales must be a non-empty list of positive floats, got {scales}")
    if mode == "slide":
        crop_size, stride = _pair(crop_size, "crop_size"), _pair(stride, "stride")
    h, w = image.shape[-2:]
    for scale in scales:
        size = (max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5)))
        scaled = resize_bilinear(image, size)
        for flipped in (False, True) if flip else (False,):
            view = scaled.flip(-1) if flipped else scaled
            if mode == "slide":
                logits = slide_logits(model, view, crop_size, stride, out_size, num_classes)
            else:
                logits = whole_logits(model, view, out_size)
                _check_classes(logits, num_classes)
            yield logits.flip(-1) if flipped else logits


def _activate(logits: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "softmax":
        return logits.softmax(dim=1)
    if activation == "sigmoid":
        return logits.sigmoid()
    return logits


def inference(
    model: nn.Module,
    image: torch.Tensor,
    out_size: tuple[int, int],
    mode: str = "whole",
    crop_size: int | tuple[int, int] | None = None,
    stride: int | tuple[int, int] | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    num_classes: int | None = None,
    activation: str = "softmax",
) -> torch.Tensor:
    """Segment one image: **softmax probabilities** averaged over the TTA views.

    Args:
        model: ``forward(images) -> logits (B, C, h, w)``; call under ``torch.inference_mode``
            and ``model.eval()``.
        image: normalised image ``(1, 3, h, w)`` (output of the test pipeline).
        out_size: ``(H, W)`` of the output, normally the original label size.
        mode: ``"whole"`` or ``"slide"`` (needs ``crop_size`` and ``stride``).
        scales: image rescale factors for multi-scale TTA.
        flip: also run horizontally flipped views.
        num_classes: expected number of classes (checked when given).
        activation: per-view transform before averaging: ``"softmax"`` (default, mmseg),
            ``"sigmoid"`` (AUCSeg's per-class scores) or ``"none"`` (raw logits).

    Returns:
        ``(1, C, H, W)`` float32 mean over views of ``activation(logits)``.

    Raises:
        ValueError: unknown mode/activation, bad sizes or scales.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    total, n = None, 0
    for logits in inference_views(
        model, image, out_size, mode, crop_size, stride, scales, flip, num_classes
    ):
        scores = _activate(logits, activation)
        total = scores if total is None else total + scores
        n += 1
    return total / n


def nmf_generator(model: nn.Module, seed: int | None, device: str | torch.device):
    """Give ``model``'s NMF modules a generator seeded with ``seed`` (None: the global RNG).

    Evaluation and prediction reseed it with the same ``seed`` before every image, so an image
    gets the same bases, logits and prediction through ``aucseg test``, ``aucseg predict`` and
    :func:`aucseg.engine.predict.predict_image`, on any number of ranks. Release it with
    ``set_nmf_generator(model, None)`` afterwards.

    Returns:
        The generator, or None when ``seed`` is None.
    """
    if seed is None:
        return None
    generator = torch.Generator(device=torch.device(device)).manual_seed(int(seed))
    set_nmf_generator(model, generator)
    return generator
