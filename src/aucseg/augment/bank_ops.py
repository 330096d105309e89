"""Tensor operations of the T-Memory Bank: class boxes, cutting shrunken boxes, storage, pasting.

Everything here works on any device without host syncs (the class boxes of one batch come back
to the host in one transfer, :func:`class_boxes`), except the fast paths for one CPU sample in a
DataLoader worker: :func:`class_boxes_cpu` (NumPy) and ``cut_entry(..., host_resize=True)``
(OpenCV).

Geometry follows the official transform (see :mod:`aucseg.augment.memory_bank`): a crop of size
(H, W) is shrunk to (int(H·p), int(W·p)), the image bilinear with half-pixel centres (OpenCV
``INTER_LINEAR``), the mask nearest (OpenCV ``INTER_NEAREST``, ``floor(i·H/H')``); an entry keeps
only the part of the shrunken crop inside the class's box.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import torch

Storage = Literal["uint8", "float16", "float32"]
STORAGE_DTYPES: dict[str, torch.dtype] = {
    "uint8": torch.uint8,
    "float16": torch.float16,
    "float32": torch.float32,
}
# One class box: [pixel count, top, bottom, left, right] (rows and columns inclusive).
Box = list[int]
_CV2_DTYPES = (torch.float32, torch.float64)


@dataclass
class Entry:
    """One stored occurrence of a class, already shrunk by ``p_resize``.

    Shape:
        patch (3, h, w) in the storage dtype; mask (h, w) bool, or None when every pixel of the
        box belongs to the class; lo, step (3, 1, 1) float32 for ``uint8`` storage (value =
        lo + q · step), else None. (top, left) is the box position inside the shrunken crop of
        size (crop_h, crop_w); ``pixels`` counts the mask pixels (an int, or a 0-d tensor on the
        entry's device, so that counting never syncs).
    """

    patch: torch.Tensor
    mask: torch.Tensor | None
    top: int
    left: int
    crop_h: int
    crop_w: int
    pixels: int | torch.Tensor
    lo: torch.Tensor | None = None
    step: torch.Tensor | None = None

    def values(self) -> torch.Tensor:
        """The stored image values as floats: exactly what a paste writes (before the cast to the
        image dtype)."""
        if self.lo is None or self.step is None:
            return self.patch
        return self.patch.to(torch.float32).mul_(self.step).add_(self.lo)

    def nbytes(self) -> int:
        """Bytes held by the entry's tensors."""
        tensors = (self.patch, self.mask, self.lo, self.step)
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)

    def to(self, device: torch.device | str) -> None:
        """Move the entry's tensors to ``device`` (in place)."""
        for name in ("patch", "mask", "lo", "step", "pixels"):
            value = getattr(self, name)
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))

    def to_state(self) -> dict[str, Any]:
        """Plain dict of CPU tensors, ints and None (``torch.load(weights_only=True)`` safe).

        Syncs once per entry (the pixel count): call at checkpoint time only.
        """
        cpu = {k: None if t is None else t.detach().cpu() for k, t in self._tensors().items()}
        return {
            **cpu,
            "top": self.top,
            "left": self.left,
            "crop_h": self.crop_h,
            "crop_w": self.crop_w,
            "pixels": int(self.pixels),
        }

    def _tensors(self) -> dict[str, torch.Tensor | None]:
        return {"patch": self.patch, "mask": self.mask, "lo": self.lo, "step": self.step}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Entry:
        """Inverse of :meth:`to_state` (the state is validated by the bank)."""
        copy = {k: None if state[k] is None else state[k].clone() for k in ("mask", "lo", "step")}
        return cls(
            patch=state["patch"].clone(),
            top=int(state["top"]),
            left=int(state["left"]),
            crop_h=int(state["crop_h"]),
            crop_w=int(state["crop_w"]),
            pixels=int(state["pixels"]),
            **copy,
        )


def encode(patch: torch.Tensor, storage: Storage) -> tuple[torch.Tensor, Any, Any]:
    """A stored copy of ``patch`` (3, h, w) float: ``(stored, lo, step)``.

    ``float32``/``float16`` cast (always a copy); ``uint8`` quantises each channel affinely
    between its minimum and maximum (``lo``, ``step = (max - min) / 255``; error <= step / 2),
    without a host sync.
    """
    if storage != "uint8":
        return patch.to(STORAGE_DTYPES[storage], copy=True), None, None
    channels = patch.shape[0]
    if patch.numel() == 0:
        ones = torch.ones(channels, 1, 1, device=patch.device)
        return torch.zeros(patch.shape, dtype=torch.uint8, device=patch.device), ones * 0, ones
    lo, hi = patch.to(torch.float32).reshape(channels, -1).aminmax(dim=1)
    lo = lo.view(channels, 1, 1)
    step = ((hi.view(channels, 1, 1) - lo) / 255.0).clamp_min_(torch.finfo(torch.float32).tiny)
    q = (patch - lo).div_(step).round_().clamp_(0.0, 255.0).to(torch.uint8)
    return q, lo, step


@dataclass(frozen=True)
class AxisPlan:
    """Index tables of a ``src -> dst`` resize along one axis.

    ``near`` follows OpenCV ``INTER_NEAREST`` (``floor(i · src / dst)``); ``i0``, ``i1``, ``w1``
    follow OpenCV ``INTER_LINEAR`` / ``F.interpolate(align_corners=False)`` without antialias
    (half-pixel centres, clamped at the borders). The lists serve host-side slicing, the tensors
    (``*_t``, on the plan's device) the gathers.
    """

    near: list[int]
    i0: list[int]
    i1: list[int]
    near_t: torch.Tensor
    i0_t: torch.Tensor
    i1_t: torch.Tensor
    w1_t: torch.Tensor


@functools.lru_cache(maxsize=64)
def axis_plan(src: int, dst: int, device: torch.device) -> AxisPlan:
    """The (cached) :class:`AxisPlan` of a ``src -> dst`` resize, tensors on ``device``.

    Computed in Python float64 arithmetic (the same operations as NumPy/OpenCV's tables), so
    building it costs no device round trip.
    """
    scale = src / dst
    near = [min(math.floor(i * scale), src - 1) for i in range(dst)]
    pos = [max((i + 0.5) * scale - 0.5, 0.0) for i in range(dst)]
    i0 = [min(math.floor(p), src - 1) for p in pos]
    w1 = [min(max(p - a, 0.0), 1.0) for p, a in zip(pos, i0, strict=True)]
    i1 = [min(a + 1, src - 1) for a in i0]

    def tensor(values: list, dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype, device=device)

    return AxisPlan(
        near,
        i0,
        i1,
        tensor(near, torch.int64),
        tensor(i0, torch.int64),
        tensor(i1, torch.int64),
        tensor(w1, torch.float32),
    )


def shrunk_size(size: int, p_resize: float) -> int:
    """Official shrunken side ``int(size · p_resize)`` (at least 1 pixel)."""
    return max(1, int(size * p_resize))


def _take_last(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x.index_select(-1, index)`` as a gather (about twice as fast on the CPU)."""
    return torch.gather(x, -1, index.view(*([1] * (x.ndim - 1)), -1).expand(*x.shape[:-1], -1))


def _lerp(a: torch.Tensor, b: torch.Tensor, w1: torch.Tensor, dim: int) -> torch.Tensor:
    """``a + w1 · (b - a)`` with the weights along ``dim`` (cast to ``a``'s dtype)."""
    shape = [1] * a.ndim
    shape[dim] = -1
    if w1.dtype != a.dtype:
        w1 = w1.to(a.dtype)
    return torch.lerp(a, b, w1.view(shape))


def _shrink_image(
    image: torch.Tensor, rows: AxisPlan, ra: int, rb: int, cols: AxisPlan, ca: int, cb: int
) -> torch.Tensor:
    """Rows ``ra:rb`` and columns ``ca:cb`` of the bilinear resize of ``image`` (3, H, W)."""
    y0, y1 = rows.i0[ra], rows.i1[rb - 1]
    x0, x1 = cols.i0[ca], cols.i1[cb - 1]
    region = image[:, y0 : y1 + 1, x0 : x1 + 1]
    upper = region.index_select(1, rows.i0_t[ra:rb] - y0)
    lower = region.index_select(1, rows.i1_t[ra:rb] - y0)
    band = _lerp(upper, lower, rows.w1_t[ra:rb], dim=1)  # (3, rb - ra, x1 - x0 + 1)
    left = _take_last(band, cols.i0_t[ca:cb] - x0)
    right = _take_last(band, cols.i1_t[ca:cb] - x0)
    return _lerp(left, right, cols.w1_t[ca:cb], dim=2)


def _shrink_whole_cv2(image: torch.Tensor, hs: int, ws: int) -> torch.Tensor:
    """The OpenCV ``INTER_LINEAR`` resize of a whole CPU crop (3, H, W) to (3, hs, ws).

    About 5x faster than the gathers of :func:`_shrink_image` for a crop-sized box on one CPU
    thread; equal to them within 1e-6 (OpenCV's float weights).
    """
    planes = np.ascontiguousarray(image.numpy())
    out = np.empty((planes.shape[0], hs, ws), dtype=planes.dtype)
    for plane, dst in zip(planes, out, strict=True):
        cv2.resize(plane, (ws, hs), dst=dst, interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(out)


def cut_entry(
    image: torch.Tensor,
    label: torch.Tensor,
    cls: int,
    box: Box,
    p_resize: float,
    storage: Storage,
    host_resize: bool = False,
) -> Entry:
    """Cut class ``cls`` out of one sample, shrunk by ``p_resize``, as a new (copied) entry.

    Args:
        image: (3, H, W) float sample.
        label: (H, W) integer labels.
        cls: class id present in ``label``.
        box: ``[count, top, bottom, left, right]`` of ``cls`` in ``label`` (see
            :func:`class_boxes`).
        p_resize: shrink factor in (0, 1].
        storage: precision of the stored image values.
        host_resize: allow OpenCV for boxes covering at least a quarter of a float32/float64
            CPU crop (the per-sample bank); the default keeps to torch operations (no host
            round trip on any device).

    Returns:
        The entry; its mask may be empty when nearest sampling drops a thin object (as in the
        official code). No host sync unless ``host_resize``.
    """
    count, top, bottom, left, right = box
    height, width = label.shape
    full = count == (bottom - top + 1) * (right - left + 1)  # the class fills its box
    box_label = label[top : bottom + 1, left : right + 1]
    if p_resize == 1.0:
        patch, lo, step = encode(image[:, top : bottom + 1, left : right + 1], storage)
        mask = None if full else box_label == cls
        return Entry(patch, mask, top, left, height, width, count, lo, step)
    hs, ws = shrunk_size(height, p_resize), shrunk_size(width, p_resize)
    rows, cols = axis_plan(height, hs, label.device), axis_plan(width, ws, label.device)
    # Shrunken rows/cols whose nearest source lies in the box: contiguous ranges.
    ra, rb = bisect.bisect_left(rows.near, top), bisect.bisect_right(rows.near, bottom)
    ca, cb = bisect.bisect_left(cols.near, left), bisect.bisect_right(cols.near, right)
    if ra >= rb or ca >= cb:
        empty = image.new_zeros((image.shape[0], 0, 0))
        patch, lo, step = encode(empty, storage)
        return Entry(patch, None, 0, 0, hs, ws, 0, lo, step)
    if full:
        mask, pixels = None, (rb - ra) * (cb - ca)
    else:  # the official nearest-resized canvas, restricted to the box
        picked = box_label.index_select(0, rows.near_t[ra:rb] - top)
        mask = _take_last(picked, cols.near_t[ca:cb] - left) == cls
        pixels = mask.sum()
    big = 4 * (rb - ra) * (cb - ca) >= hs * ws
    if host_resize and big and image.device.type == "cpu" and image.dtype in _CV2_DTYPES:
        shrunk = _shrink_whole_cv2(image, hs, ws)[:, ra:rb, ca:cb]
    else:
        shrunk = _shrink_image(image, rows, ra, rb, cols, ca, cb)
    patch, lo, step = encode(shrunk, storage)
    return Entry(patch, mask, ra, ca, hs, ws, pixels, lo, step)


def paste(
    image: torch.Tensor, label: torch.Tensor, entry: Entry, cls: int, off_y: int, off_x: int
) -> int | torch.Tensor:
    """Write ``entry``'s masked pixels into one sample in place; returns the pixels written.

    ``(off_y, off_x)`` is the top-left corner of the shrunken whole crop in the sample; the part of
    the box that falls outside the sample is clipped. The written image values equal
    ``entry.values()`` cast to the image dtype. No host sync.
    """
    height, width = label.shape
    y0, x0 = off_y + entry.top, off_x + entry.left
    h, w = entry.patch.shape[1:]
    ya, yb = max(y0, 0), min(y0 + h, height)
    xa, xb = max(x0, 0), min(x0 + w, width)
    if ya >= yb or xa >= xb:
        return 0
    clipped = (ya, yb, xa, xb) != (y0, y0 + h, x0, x0 + w)
    rows, cols = slice(ya - y0, yb - y0), slice(xa - x0, xb - x0)
    values = entry.values()[:, rows, cols]
    img_view, lab_view = image[:, ya:yb, xa:xb], label[ya:yb, xa:xb]
    if values.device != image.device:
        values = values.to(image.device)
    if entry.mask is None:
        img_view.copy_(values)
        lab_view.fill_(cls)
        return (yb - ya) * (xb - xa) if clipped else entry.pixels
    mask = entry.mask[rows, cols]
    if mask.device != label.device:
        mask = mask.to(label.device)
    torch.where(mask, values, img_view, out=img_view)  # elementwise, so writing in place is safe
    lab_view.masked_fill_(mask, cls)
    return mask.sum() if clipped else entry.pixels


def _first_last(hits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the first and the last True along the last dim (meaningless where none)."""
    as_u8 = hits.to(torch.uint8)
    first = as_u8.argmax(dim=-1)  # argmax returns the first maximum
    last = hits.shape[-1] - 1 - as_u8.flip(-1).argmax(dim=-1)
    return first, last


def _histogram(lab: torch.Tensor, bins: int, axis: int) -> torch.Tensor:
    """Counts of (sample, label + 1, row or column): (B, bins, H or W) int32, without host sync.

    ``lab`` (B, H, W) holds labels in [-1, bins - 2]. ``scatter_add_`` rather than ``bincount``:
    CUDA's bincount reads the maximum key back to the host, and on the CPU it is slower.
    """
    b, h, w = lab.shape
    size = (h, w)[axis - 1]
    pos = torch.arange(size, device=lab.device)
    pos = pos.view(1, h, 1) if axis == 1 else pos.view(1, 1, w)
    first = torch.arange(b, device=lab.device) * bins + 1  # bin of label 0 in each sample
    base = pos + (first * size).view(b, 1, 1)
    keys = torch.add(base, lab, alpha=size).flatten()  # (sample · bins + label + 1) · size + pos
    ones = torch.ones(1, dtype=torch.int32, device=lab.device).expand(keys.numel())
    counts = torch.zeros(b * bins * size, dtype=torch.int32, device=lab.device)
    return counts.scatter_add_(0, keys, ones).view(b, bins, size)


def class_boxes(labels: torch.Tensor, classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Pixel count and bounding box of the given classes, per sample, on the labels' device.

    Args:
        labels: (B, H, W) integer labels; values outside [0, num_classes) are no class.
        classes: (K,) int64 class ids in [0, num_classes), on the labels' device.
        num_classes: number of classes C.

    Returns:
        (B, K, 5) int64 ``[count, top, bottom, left, right]`` (inclusive; the box is meaningless
        where count is 0). Two histogram passes and no host sync.
    """
    if labels.device.type == "cpu" and labels.shape[0] > 1:  # per sample: histograms stay cached
        return torch.cat([class_boxes(lab[None], classes, num_classes) for lab in labels])
    # Bin 0 gathers the negative labels, bin C + 1 every label >= C.
    lab = labels.to(torch.int64).clamp(-1, num_classes)
    by_row = _histogram(lab, num_classes + 2, axis=1).index_select(1, classes + 1)  # (B, K, H)
    by_col = _histogram(lab, num_classes + 2, axis=2).index_select(1, classes + 1)  # (B, K, W)
    top, bottom = _first_last(by_row > 0)
    left, right = _first_last(by_col > 0)
    count = by_row.sum(dim=2, dtype=torch.int64)
    return torch.stack([count, top, bottom, left, right], dim=-1)


def class_boxes_cpu(label: torch.Tensor, num_classes: int) -> list[Box]:
    """Like :func:`class_boxes` for one CPU sample (H, W), all classes: ``C`` boxes.

    Run-length encodes the rows with NumPy (about 5x faster than a histogram of every pixel on
    one CPU thread); boxes of absent classes are ``[0, H, -1, W, -1]``.
    """
    lab = np.ascontiguousarray(label.numpy())
    h, w = lab.shape
    starts = np.empty((h, w), dtype=bool)
    starts[:, 0] = True
    np.not_equal(lab[:, 1:], lab[:, :-1], out=starts[:, 1:])
    begin = np.flatnonzero(starts)  # (R,) flat index of every run, in row order
    end = np.empty_like(begin)  # exclusive; a row's last run ends where the next row starts
    end[:-1], end[-1] = begin[1:], h * w
    cls = lab.reshape(-1)[begin]
    keep = (cls >= 0) & (cls < num_classes)
    cls, begin, end = cls[keep], begin[keep], end[keep]
    row = begin // w
    out = np.empty((5, num_classes), dtype=np.int64)
    out[0] = np.bincount(cls, weights=end - begin, minlength=num_classes)
    out[1], out[2], out[3], out[4] = h, -1, w, -1
    np.minimum.at(out[1], cls, row)
    np.maximum.at(out[2], cls, row)
    np.minimum.at(out[3], cls, begin - row * w)
    np.maximum.at(out[4], cls, end - 1 - row * w)
    return out.T.tolist()
