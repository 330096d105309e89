"""Paired image/label transforms with the semantics of the official (mmseg 0.24.1) pipelines.

A sample is a dict with ``"image"`` ((H, W, 3) uint8 RGB until :class:`Normalize`, then float32)
and optionally ``"label"`` ((H, W) int64, 255 = ignore); every op is a callable
``sample -> sample`` that returns a new dict. Images are resized bilinearly with OpenCV, labels
only ever with nearest neighbour.

Conventions: ``img_scale`` is mmseg's ``(long, short)`` bound, e.g. ``(2048, 512)``: an image
is rescaled, keeping its aspect ratio, by ``min(long / max(h, w), short / min(h, w))``.
``crop_size`` and pad sizes are ``(h, w)``.

Randomness comes from NumPy's global RNG, drawn in the same order as mmseg, so a seeded main
process plus :func:`seed_worker` as the DataLoader ``worker_init_fn`` makes a run repeatable.
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from aucseg.errors import InputError

Sample = dict[str, Any]

IMAGENET_MEAN: tuple[float, float, float] = (123.675, 116.28, 103.53)
IMAGENET_STD: tuple[float, float, float] = (58.395, 57.12, 57.375)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy and ``random`` from the worker's torch seed.

    torch gives each worker ``base_seed + worker_id`` (``base_seed`` drawn from the main
    process's torch RNG), so seeding the main process makes every worker repeatable.

    Args:
        worker_id: the worker index (unused; torch's per-worker seed already includes it).
    """
    del worker_id
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _pair(value: Sequence[int] | int, name: str) -> tuple[int, int]:
    if isinstance(value, numbers.Integral):
        value = (int(value), int(value))
    if not isinstance(value, Sequence | np.ndarray) or isinstance(value, str):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if len(value) != 2 or any(int(v) != v or v <= 0 for v in value):
        raise InputError(f"{name} must be two positive integers, got {value!r}")
    return int(value[0]), int(value[1])


def rescale_size(hw: tuple[int, int], img_scale: tuple[int, int]) -> tuple[int, int]:
    """Size that fits ``img_scale`` = (long, short) keeping the aspect ratio (mmcv imrescale).

    Args:
        hw: (h, w) of the image.
        img_scale: bound on the (long, short) sides; their order does not matter.

    Returns:
        (new_h, new_w), each ``int(side * factor + 0.5)``.
    """
    h, w = hw
    long_edge, short_edge = max(img_scale), min(img_scale)
    factor = min(long_edge / max(h, w), short_edge / min(h, w))
    return int(h * factor + 0.5), int(w * factor + 0.5)


def resize_image(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (OpenCV ``INTER_LINEAR``) to ``hw`` = (h, w); dtype kept."""
    if image.shape[:2] == tuple(hw):
        return image
    return cv2.resize(image, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)


def resize_label(label: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) label map to ``hw`` = (h, w); dtype kept.

    Same pixel choice as OpenCV's ``INTER_NEAREST`` (src = floor(dst * src_size / dst_size)).
    """
    if label.shape == tuple(hw):
        return label
    if label.size and label.min() >= 0 and label.max() <= 255:
        small = cv2.resize(label.astype(np.uint8), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)
        return small.astype(label.dtype)
    h, w = label.shape
    rows = np.minimum(np.floor(np.arange(hw[0]) * (h / hw[0])).astype(np.int64), h - 1)
    cols = np.minimum(np.floor(np.arange(hw[1]) * (w / hw[1])).astype(np.int64), w - 1)
    return label[rows[:, None], cols[None, :]]


def _image(sample: Sample) -> np.ndarray:
    if "image" not in sample:
        raise ValueError(f"sample has no 'image' key (keys: {sorted(sample)})")
    return sample["image"]


class Compose:
    """Apply ops in order. Args: ops: callables ``sample -> sample``."""

    def __init__(self, ops: Sequence[Callable[[Sample], Sample]]) -> None:
        for op in ops:
            if not callable(op):
                raise TypeError(f"every op must be callable (sample -> sample), got {op!r}")
        self.ops = list(ops)

    def __call__(self, sample: Sample) -> Sample:
        for op in self.ops:
            sample = op(sample)
        return sample

    def __repr__(self) -> str:
        return "Compose(\n" + "".join(f"  {op!r},\n" for op in self.ops) + ")"


class Resize:
    """Resize to fit ``img_scale`` keeping the ratio, optionally with a random ratio (mmseg).

    With ``ratio_range=(lo, hi)`` a ratio ``r ~ U[lo, hi)`` is drawn and the bound becomes
    ``(int(long * r), int(short * r))``. Sets ``"scale_factor"`` (h, w) and ``"img_shape"``.

    Args:
        img_scale: (long, short) bound, e.g. (2048, 512); with ``keep_ratio=False`` the exact
            output size (w, h), as in mmseg.
        ratio_range: optional (lo, hi) random ratio range, e.g. (0.5, 2.0).
        keep_ratio: keep the aspect ratio (mmcv ``imrescale``) or stretch.
        resize_label: also resize ``"label"`` (nearest); False at test time, where evaluation
            uses the label at its original resolution.
    """

    def __init__(
        self,
        img_scale: tuple[int, int],
        ratio_range: tuple[float, float] | None = None,
        keep_ratio: bool = True,
        resize_label: bool = True,
    ) -> None:
        self.img_scale = _pair(img_scale, "img_scale")
        if ratio_range is not None:
            lo, hi = (float(r) for r in ratio_range)
            if not 0 < lo <= hi:
                raise InputError(f"ratio_range must satisfy 0 < lo <= hi, got {ratio_range!r}")
            ratio_range = (lo, hi)
        self.ratio_range = ratio_range
        self.keep_ratio = keep_ratio
        self.resize_label = resize_label

    def target_size(self, hw: tuple[int, int]) -> tuple[int, int]:
        """Draw the ratio (when random) and return the output (h, w) for an (h, w) input."""
        scale = self.img_scale
        if self.ratio_range is not None:
            lo, hi = self.ratio_range
            ratio = np.random.random_sample() * (hi - lo) + lo
            scale = (int(scale[0] * ratio), int(scale[1] * ratio))
        if self.keep_ratio:
            return rescale_size(hw, scale)
        return scale[1], scale[0]

    def __call__(self, sample: Sample) -> Sample:
        sample = dict(sample)
        image = _image(sample)
        h, w = image.shape[:2]
        new_hw = self.target_size((h, w))
        sample["image"] = resize_image(image, new_hw)
        if self.resize_label and sample.get("label") is not None:
            sample["label"] = resize_label(sample["label"], new_hw)
        sample["scale_factor"] = (new_hw[0] / h, new_hw[1] / w)
        sample["img_shape"] = new_hw
        return sample

    def __repr__(self) -> str:
        return (
            f"Resize(img_scale={self.img_scale}, ratio_range={self.ratio_range}, "
            f"keep_ratio={self.keep_ratio}, resize_label={self.resize_label})"
        )


class RandomCrop:
    """Random crop of at most ``crop_size`` (h, w), re-drawn while one class dominates (mmseg).

    A crop is accepted when, ignoring ``ignore_index``, more than one class is present and the
    largest covers less than ``cat_max_ratio`` of the counted pixels; after ``max_tries``
    rejections the next drawn crop is used as is. ``cat_max_ratio >= 1`` disables the check.
    Sets ``"crop_bbox"`` (y1, y2, x1, x2).
    """

    def __init__(
        self,
        crop_size: tuple[int, int],
        cat_max_ratio: float = 1.0,
        ignore_index: int = 255,
        max_tries: int = 10,
    ) -> None:
        self.crop_size = _pair(crop_size, "crop_size")
        if not cat_max_ratio > 0:
            raise InputError(f"cat_max_ratio must be > 0, got {cat_max_ratio}")
        self.cat_max_ratio = float(cat_max_ratio)
        self.ignore_index = ignore_index
        self.max_tries = int(max_tries)

    def get_crop_bbox(self, hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """Draw a crop box (y1, y2, x1, x2) for an image of size ``hw`` (clipped to it)."""
        margin_h = max(hw[0] - self.crop_size[0], 0)
        margin_w = max(hw[1] - self.crop_size[1], 0)
        y1 = np.random.randint(0, margin_h + 1)
        x1 = np.random.randint(0, margin_w + 1)
        return y1, y1 + self.crop_size[0], x1, x1 + self.crop_size[1]

    def accepts(self, label_crop: np.ndarray) -> bool:
        """True when the crop holds > 1 class and none covers >= cat_max_ratio (ignore excluded)."""
        flat = label_crop.ravel()
        counts = np.bincount(flat[flat != self.ignore_index])
        counts = counts[counts > 0]
        return len(counts) > 1 and counts.max() / counts.sum() < self.cat_max_ratio

    def __call__(self, sample: Sample) -> Sample:
        sample = dict(sample)
        image = _image(sample)
        label = sample.get("label")
        bbox = self.get_crop_bbox(image.shape[:2])
        if self.cat_max_ratio < 1.0 and label is not None:
            for _ in range(self.max_tries):
                y1, y2, x1, x2 = bbox
                if self.accepts(label[y1:y2, x1:x2]):
                    break
                bbox = self.get_crop_bbox(image.shape[:2])
        y1, y2, x1, x2 = bbox
        sample["image"] = image[y1:y2, x1:x2]
        if label is not None:
            sample["label"] = label[y1:y2, x1:x2]
        sample["crop_bbox"] = (y1, min(y2, image.shape[0]), x1, min(x2, image.shape[1]))
        sample["img_shape"] = sample["image"].shape[:2]
        return sample

    def __repr__(self) -> str:
        return f"RandomCrop(crop_size={self.crop_size}, cat_max_ratio={self.cat_max_ratio})"


class RandomFlip:
    """Flip image and label with probability ``prob`` ("horizontal" or "vertical")."""

    def __init__(self, prob: float = 0.5, direction: str = "horizontal") -> None:
        if not 0.0 <= prob <= 1.0:
            raise InputError(f"prob must lie in [0, 1], got {prob}")
        if direction not in ("horizontal", "vertical"):
            raise InputError(f"direction must be 'horizontal' or 'vertical', got {direction!r}")
        self.prob = prob
        self.direction = direction

    def __call__(self, sample: Sample) -> Sample:
        sample = dict(sample)
        flip = bool(np.random.rand() < self.prob)
        sample["flip"] = flip
        if flip:
            axis = 1 if self.direction == "horizontal" else 0
            sample["image"] = np.flip(_image(sample), axis=axis)
            if sample.get("label") is not None:
                sample["label"] = np.flip(sample["label"], axis=axis)
        return sample

    def __repr__(self) -> str:
        return f"RandomFlip(prob={self.prob}, direction={self.direction!r})"


def _convert(img: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    """``clip(img * alpha + beta, 0, 255)`` in float32, truncated to uint8 (mmseg's rounding).

    Evaluated once per uint8 value and applied as a 256-entry lookup table: identical output,
    a fraction of the cost of the per-pixel float arithmetic.
    """
    values = np.arange(256, dtype=np.float32) * alpha + beta
    lut = np.clip(values, 0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


class PhotoMetricDistortion:
    """mmseg's colour jitter on a uint8 image; each step applied with probability 0.5.

    Order: brightness (+U[-delta, delta]) -> contrast (x U[lo, hi]) when mode 1 -> saturation
    (HSV S x U[lo, hi]) -> hue (H + randint[-delta, delta), mod 180) -> contrast when mode 0,
    with mode ~ randint(2). Same draw order as mmseg 0.24.1.
    """

    def __init__(
        self,
        brightness_delta: int = 32,
        contrast_range: tuple[float, float] = (0.5, 1.5),
        saturation_range: tuple[float, float] = (0.5, 1.5),
        hue_delta: int = 18,
    ) -> None:
        self.brightness_delta = brightness_delta
        self.contrast_lower, self.contrast_upper = contrast_range
        self.saturation_lower, self.saturation_upper = saturation_range
        self.hue_delta = hue_delta

    def brightness(self, img: np.ndarray) -> np.ndarray:
        """Add a random offset with probability 0.5."""
        if np.random.randint(2):
            delta = np.random.uniform(-self.brightness_delta, self.brightness_delta)
            return _convert(img, beta=delta)
        return img

    def contrast(self, img: np.ndarray) -> np.ndarray:
        """Multiply by a random factor with probability 0.5."""
        if np.random.randint(2):
            alpha = np.random.uniform(self.contrast_lower, self.contrast_upper)
            return _convert(img, alpha=alpha)
        return img

    def saturation(self, img: np.ndarray) -> np.ndarray:
        """Scale the HSV saturation with probability 0.5."""
        if np.random.randint(2):
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
            alpha = np.random.uniform(self.saturation_lower, self.saturation_upper)
            hsv[:, :, 1] = _convert(hsv[:, :, 1], alpha=alpha)
            return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return img

    def hue(self, img: np.ndarray) -> np.ndarray:
        """Shift the HSV hue (OpenCV's 0..179 range, wrapped) with probability 0.5."""
        if np.random.randint(2):
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
            shift = np.random.randint(-self.hue_delta, self.hue_delta)
            lut = ((np.arange(256) + shift) % 180).astype(np.uint8)  # OpenCV hue is 0..179
            hsv[:, :, 0] = cv2.LUT(hsv[:, :, 0], lut)
            return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return img

    def __call__(self, sample: Sample) -> Sample:
        sample = dict(sample)
        img = _image(sample)
        if img.dtype != np.uint8:
            raise TypeError(
                f"PhotoMetricDistortion needs a uint8 image, got {img.dtype}; put it before "
                "Normalize"
            )
        img = np.ascontiguousarray(img)
        img = self.brightness(img)
        mode = np.random.randint(2)
        if mode == 1:
            img = self.contrast(img)
        img = self.saturation(img)
        img = self.hue(img)
        if mode == 0:
            img = self.contrast(img)
        sample["image"] = img
        return sample

    def __repr__(self) -> str:
        return (
            f"PhotoMetricDistortion(brightness_delta={self.brightness_delta}, "
            f"contrast_range=({self.contrast_lower}, {self.contrast_upper}), "
            f"saturation_range=({self.saturation_lower}, {self.saturation_upper}), "
            f"hue_delta={self.hue_delta})"
        )


class Normalize:
    """``(image - mean) / std`` per RGB channel, to float32. Args: mean, std: 3 values each."""

    def __init__(
        self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
    ) -> None:
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise InputError(f"mean/std must be 3 values with std > 0, got {mean!r}, {std!r}")
        self.mean = np.asarray(mean, dtype=np.float64).reshape(1, 3)
        self.inv_std = 1.0 / np.asarray(std, dtype=np.float64).reshape(1, 3)

    def __call__(self, sample: Sample) -> Sample:
        sample = dict(sample)
        image = _image(sample).astype(np.float32)  # a new array: safe to edit in place
        # OpenCV arithmetic with float64 (1, 3) constants, as mmcv's imnormalize: same rounding.
        cv2.subtract(image, self.mean, image)
        cv2.multiply(image, self.inv_std, image)
        sample["image"] = image
        return sample

    def __repr__(self) -> str:
        mean, std = self.mean.ravel().tolist(), (1 / self.inv_std).ravel().tolist()
        return f"Normalize(mean={mean}, std={std})"


class Pad:
    """Pad bottom/right to ``size`` (h, w): image with ``pad_val``, label with ``seg_pad_val``.

    Raises:
        ValueError: (at call) the image is larger than ``size``.
    """

    def __init__(self, size: tuple[int, int], pad_val: float = 0, seg_pad_val: int = 255) -> None:
        self.size = _pair(size, "size")
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    def __call__(self, sample: Sample) -> Sample:
        sample = dict(sample)
        image = _image(sample)
        h, w = image.shape[:2]
        dh, dw = self.size[0] - h, self.size[1] - w
        if dh < 0 or dw < 0:
            raise InputError(
                f"cannot pad an image of {h}x{w} to the smaller size {self.size}; crop first"
            )
        if dh or dw:
            pad = ((0, dh), (0, dw), (0, 0))
            sample["image"] = np.pad(image, pad, constant_values=self.pad_val)
            if sample.get("label") is not None:
                sample["label"] = np.pad(sample["label"], pad[:2], constant_values=self.seg_pad_val)
        sample["pad_shape"] = self.size
        return sample

    def __repr__(self) -> str:
        return f"Pad(size={self.size}, pad_val={self.pad_val}, seg_pad_val={self.seg_pad_val})"


class ResizeToMultiple:
    """Resize (bilinear) so both sides are the next multiple of ``size_divisor`` (ceil).

    Args:
        size_divisor: e.g. 32.
        resize_label: also resize ``"label"`` (nearest); False at test time.
    """

    def __init__(self, size_divisor: int = 32, resize_label: bool = False) -> None:
        if int(size_divisor) != size_divisor or size_divisor < 1:
            raise InputError(f"size_divisor must be a positive integer, got {size_divisor!r}")
        self.size_divisor = int(size_divisor)
        self.resize_label = resize_label

    def __call__(self, sample: Sample) -> Sample:
        sample = dict(sample)
        image = _image(sample)
        d = self.size_divisor
        hw = (-(-image.shape[0] // d) * d, -(-image.shape[1] // d) * d)
        sample["image"] = resize_image(image, hw)
        if self.resize_label and sample.get("label") is not None:
            sample["label"] = resize_label(sample["label"], hw)
        sample["img_shape"] = hw
        return sample

    def __repr__(self) -> str:
        return f"ResizeToMultiple(size_divisor={self.size_divisor})"


class ToTensor:
    """``"image"`` (H, W, 3) -> float32 tensor (3, H, W); ``"label"`` -> int64 tensor (H, W)."""

    def __call__(self, sample: Sample) -> Sample:
        sample = dict(sample)
        image = np.ascontiguousarray(_image(sample).transpose(2, 0, 1), dtype=np.float32)
        sample["image"] = torch.from_numpy(image)
        if sample.get("label") is not None:
            label = np.ascontiguousarray(sample["label"], dtype=np.int64)
            sample["label"] = torch.from_numpy(label)
        return sample

    def __repr__(self) -> str:
        return "ToTensor()"


def build_train_pipeline(
    crop_size: tuple[int, int],
    img_scale: tuple[int, int],
    ratio_range: tuple[float, float] = (0.5, 2.0),
    cat_max_ratio: float = 0.75,
    flip_prob: float = 0.5,
    photometric: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    ignore_index: int = 255,
) -> Compose:
    """The official training pipeline: Resize -> RandomCrop -> RandomFlip ->
    PhotoMetricDistortion -> Normalize -> Pad -> ToTensor.

    Args:
        crop_size: (h, w) of the crop, e.g. (512, 512).
        img_scale: (long, short) bound before the random ratio, e.g. (2048, 512).
        ratio_range: random resize ratio range.
        cat_max_ratio: crop re-draw threshold on the largest class share (1 disables it).
        flip_prob: horizontal flip probability.
        photometric: include PhotoMetricDistortion.
        mean, std: RGB normalisation.
        ignore_index: label value excluded from the crop check and used for label padding.

    Returns:
        A callable; its output "image" is float32 (3, h, w) and "label" int64 (h, w) with
        (h, w) = crop_size.
    """
    ops: list[Callable[[Sample], Sample]] = [
        Resize(img_scale, ratio_range=ratio_range, keep_ratio=True),
        RandomCrop(crop_size, cat_max_ratio=cat_max_ratio, ignore_index=ignore_index),
        RandomFlip(prob=flip_prob),
    ]
    if photometric:
        ops.append(PhotoMetricDistortion())
    ops += [Normalize(mean, std), Pad(crop_size, 0, ignore_index), ToTensor()]
    return Compose(ops)


class EvalPreset:
    """The one test-time preprocessing, shared by ``aucseg test``, ``aucseg predict`` and the
    Python inference API (as torchvision's single evaluation preset).

    Exactly the official test pipeline on the image: :class:`Resize` to fit ``img_scale``
    keeping the ratio (mmcv ``imrescale``, bilinear), then :class:`ResizeToMultiple` when
    ``size_divisor`` is set, then :class:`Normalize` (mmcv rounding) and :class:`ToTensor`.

    Args:
        img_scale: (long, short) bound, e.g. (2048, 512); None keeps the input size.
        size_divisor: round both sides up to a multiple of it (e.g. 32); None skips.
        mean, std: RGB normalisation.
    """

    def __init__(
        self,
        img_scale: tuple[int, int] | None,
        size_divisor: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        ops: list[Callable[[Sample], Sample]] = []
        if img_scale is not None:
            ops.append(Resize(img_scale, keep_ratio=True, resize_label=False))
        if size_divisor is not None:
            ops.append(ResizeToMultiple(size_divisor))
        self.img_scale = None if img_scale is None else _pair(img_scale, "img_scale")
        self.size_divisor = size_divisor
        self._ops = Compose([*ops, Normalize(mean, std), ToTensor()])

    def __call__(self, image: np.ndarray) -> tuple[torch.Tensor, dict[str, Any]]:
        """Preprocess one RGB image.

        Args:
            image: (H, W, 3) uint8 RGB.

        Returns:
            ``(tensor, meta)``: the (3, H', W') float32 normalised image and ``{"ori_shape":
            (H, W), "img_shape": (H', W'), "scale_factor": (h / H, w / W)}`` (the keep-ratio
            resize's factor, as mmseg; (1.0, 1.0) without ``img_scale``).

        Raises:
            TypeError: not a uint8 NumPy array. InputError: not of shape (H, W, 3).
        """
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            kind = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
            raise TypeError(f"EvalPreset needs a uint8 NumPy image (H, W, 3), got {kind}")
        if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
            raise InputError(
                f"EvalPreset needs an RGB image of shape (H, W, 3), got {image.shape}; read "
                "files with aucseg.data.read_image"
            )
        out = self._ops({"image": image})
        meta = {
            "ori_shape": tuple(image.shape[:2]),
            "img_shape": tuple(out["image"].shape[1:]),
            "scale_factor": out.get("scale_factor", (1.0, 1.0)),
        }
        return out["image"], meta

    def __repr__(self) -> str:
        return f"EvalPreset(img_scale={self.img_scale}, size_divisor={self.size_divisor})"


class ApplyEvalPreset:
    """Pipeline op: :class:`EvalPreset` on ``"image"`` (meta keys added), ``"label"`` -> int64
    tensor at the original resolution."""

    def __init__(self, preset: EvalPreset) -> None:
        self.preset = preset

    def __call__(self, sample: Sample) -> Sample:
        sample = dict(sample)
        sample["image"], meta = self.preset(_image(sample))
        sample.update(meta)
        if sample.get("label") is not None:
            label = np.ascontiguousarray(sample["label"], dtype=np.int64)
            sample["label"] = torch.from_numpy(label)
        return sample

    def __repr__(self) -> str:
        return f"ApplyEvalPreset({self.preset!r})"


def build_test_pipeline(
    img_scale: tuple[int, int] | None,
    size_divisor: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Compose:
    """The official test pipeline: :class:`EvalPreset` on the image, the label kept.

    Args:
        img_scale: (long, short) bound, e.g. (2048, 512) for ADE20K/COCO, (2048, 1024) for
            Cityscapes; None keeps the size.
        size_divisor: e.g. 32 (ADE20K/COCO) to round both sides up to a multiple; None skips.
        mean, std: RGB normalisation.

    Returns:
        A callable; its output "image" is float32 (3, h', w') resized and "label" (if the input
        had one) int64 (H, W) at the original resolution, where evaluation happens; plus
        "ori_shape", "img_shape" and "scale_factor".
    """
    return Compose([ApplyEvalPreset(EvalPreset(img_scale, size_divisor, mean, std))])


class RecordOriginalShape:
    """Store the input (H, W) as ``"ori_shape"`` (the size predictions are resized back to)."""

    def __call__(self, sample: Sample) -> Sample:
        sample = dict(sample)
        sample["ori_shape"] = tuple(_image(sample).shape[:2])
        return sample

    def __repr__(self) -> str:
        return "RecordOriginalShape()"
