"""The T-Memory Bank: stores pixels of tail classes and pastes them into crops that lack them.

Two placements share one implementation:

* :class:`TMemoryBank` (and :class:`MemoryBankTransform` for dataset pipelines) works on one
  sample, as the official transform does: every DataLoader worker owns its own bank.
* :class:`BatchTMemoryBank` works on a collated mini-batch in the training loop, on the training
  device, with a single bank; it pastes the tail classes missing from the whole mini-batch.

What is stored: for one occurrence of tail class ``c`` in a crop of size (H, W), the crop is
shrunk by ``p_resize`` to (int(H·p), int(W·p)) exactly as the official code shrinks the whole crop
(image bilinear with half-pixel centres, mask nearest with ``floor(i·H/H')`` sampling), but only
inside the class's bounding box: the entry holds the shrunken box's image values (3, h, w), its
mask (h, w), the box position in the shrunken crop and the shrunken crop size. Pasting draws the
top-left offset of the shrunken *whole* crop exactly as the official code does
(``randint(0, H - H')``, ``randint(0, W - W')``) and writes the masked pixels where the whole crop
would have put them. Entries are copies, never views of the sample.

Random decisions (replacement slot, sampled classes, stored entry, offsets, target sample in
batch mode) use one :class:`random.Random` per bank, in the same order as the official code.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["BatchTMemoryBank", "MemoryBankTransform", "TMemoryBank"]

_STATE_VERSION = 1


@dataclass
class _Entry:
    """One stored tail-class occurrence, already shrunk by ``p_resize``.

    Shape:
        patch (3, h, w) float, mask (h, w) bool; (top, left) is the box position inside the
        shrunken crop of size (crop_h, crop_w).
    """

    patch: torch.Tensor
    mask: torch.Tensor
    top: int
    left: int
    crop_h: int
    crop_w: int
    pixels: int = -1

    def __post_init__(self) -> None:
        if self.pixels < 0:
            self.pixels = int(self.mask.sum())

    def nbytes(self) -> int:
        """Bytes held by the entry's tensors."""
        return self.patch.numel() * self.patch.element_size() + self.mask.numel()

    def to_state(self) -> dict[str, Any]:
        """Plain dict of CPU tensors and ints (safe for ``torch.load(weights_only=True)``)."""
        return {
            "patch": self.patch.detach().cpu(),
            "mask": self.mask.detach().cpu(),
            "top": self.top,
            "left": self.left,
            "crop_h": self.crop_h,
            "crop_w": self.crop_w,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Entry:
        """Inverse of :meth:`to_state`."""
        return cls(
            patch=state["patch"].clone(),
            mask=state["mask"].to(torch.bool).clone(),
            top=int(state["top"]),
            left=int(state["left"]),
            crop_h=int(state["crop_h"]),
            crop_w=int(state["crop_w"]),
        )


def _shrunk_size(size: int, p_resize: float) -> int:
    """Official shrunken side ``int(size · p_resize)`` (at least 1 pixel)."""
    return max(1, int(size * p_resize))


@functools.lru_cache(maxsize=64)
def _resize_plan(
    src: int, dst: int, device: torch.device
) -> tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index tables of a ``src -> dst`` resize along one axis (cached per size pair and device,
    so entries cut on the training device cost no host-to-device copy of the tables).

    Nearest follows OpenCV ``INTER_NEAREST`` (``floor(i · src / dst)``); bilinear follows OpenCV
    ``INTER_LINEAR`` / ``F.interpolate(align_corners=False)`` without antialias (half-pixel
    centres, clamped at the borders).

    Returns:
        near (python list, non-decreasing, and the same as an int64 tensor), i0, i1 (int64) and
        w1 (float32 weight of i1), each of length ``dst``; the tensors on ``device``.
    """
    dst_idx = torch.arange(dst, dtype=torch.float64)
    near = (dst_idx * (src / dst)).floor().to(torch.int64).clamp_(max=src - 1)
    pos = ((dst_idx + 0.5) * (src / dst) - 0.5).clamp_(min=0.0)
    i0 = pos.floor().to(torch.int64).clamp_(max=src - 1)
    w1 = (pos - i0.to(torch.float64)).clamp_(0.0, 1.0).to(torch.float32)
    i1 = (i0 + 1).clamp_(max=src - 1)
    return near.tolist(), *(t.to(device) for t in (near, i0, i1, w1))


def _to(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` on ``like``'s device and dtype (no call when already there: this is a hot path)."""
    if t.device == like.device and t.dtype == like.dtype:
        return t
    return t.to(like.device, like.dtype)


def _resize_axis(
    x: torch.Tensor, dim: int, i0: torch.Tensor, i1: torch.Tensor, w1: torch.Tensor
) -> torch.Tensor:
    """Linear interpolation of ``x`` along ``dim`` at taps (i0, i1) with weights w1."""
    shape = [1] * x.ndim
    shape[dim] = -1
    w = _to(w1, x).view(shape)
    return torch.lerp(x.index_select(dim, i0), x.index_select(dim, i1), w)


def _make_entry(
    image: torch.Tensor, label: torch.Tensor, cls: int, top: int, bottom: int, p_resize: float
) -> _Entry:
    """Cut class ``cls`` out of one sample, shrunk by ``p_resize``, as a new (copied) entry.

    Args:
        image: (3, H, W) float sample.
        label: (H, W) integer labels.
        cls: class id present in ``label``.
        top, bottom: first and last row of ``cls`` in ``label`` (inclusive).
        p_resize: shrink factor in (0, 1].

    Returns:
        The entry; its mask may be empty when nearest sampling drops a thin object (as in the
        official code).
    """
    height, width = label.shape
    band = label[top : bottom + 1] == cls  # (rows of the class, W)
    cols = band.any(dim=0).nonzero().flatten()
    left, right = int(cols[0]), int(cols[-1])
    if p_resize == 1.0:
        patch = image[:, top : bottom + 1, left : right + 1].clone()
        return _Entry(patch, band[:, left : right + 1].clone(), top, left, height, width)
    hs, ws = _shrunk_size(height, p_resize), _shrunk_size(width, p_resize)
    near_r, near_rt, r0, r1, wr = _resize_plan(height, hs, label.device)
    near_c, near_ct, c0, c1, wc = _resize_plan(width, ws, label.device)
    # Shrunken rows/cols whose nearest source lies in the box: contiguous ranges.
    ra, rb = bisect.bisect_left(near_r, top), bisect.bisect_right(near_r, bottom)
    ca, cb = bisect.bisect_left(near_c, left), bisect.bisect_right(near_c, right)
    if ra >= rb or ca >= cb:
        empty_patch = image.new_zeros((image.shape[0], 0, 0))
        empty_mask = torch.zeros((0, 0), dtype=torch.bool, device=label.device)
        return _Entry(empty_patch, empty_mask, 0, 0, hs, ws)
    # Mask: nearest samples inside the box (the official resized canvas, restricted to the box).
    rows_n = near_rt[ra:rb] - top
    cols_n = near_ct[ca:cb] - left
    mask = band[:, left : right + 1].index_select(0, rows_n).index_select(1, cols_n)
    # Image: the bilinear resize of the whole crop, evaluated only at the kept rows and columns.
    y0, y1 = int(r0[ra]), int(r1[rb - 1])
    x0, x1 = int(c0[ca]), int(c1[cb - 1])
    region = image[:, y0 : y1 + 1, x0 : x1 + 1]
    rows = _resize_axis(region, 1, r0[ra:rb] - y0, r1[ra:rb] - y0, wr[ra:rb])
    patch = _resize_axis(rows, 2, c0[ca:cb] - x0, c1[ca:cb] - x0, wc[ca:cb])
    return _Entry(patch, mask, ra, ca, hs, ws)


def _class_rows(labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample class presence and first/last row of every class, in one bincount pass.

    Args:
        labels: (B, H, W) integer labels; values outside [0, num_classes) are ignored.
        num_classes: number of classes C.

    Returns:
        present (B, C) bool and rows (B, C, 2) int64 (top, bottom), inclusive; rows of absent
        classes are meaningless. Both on the labels' device.
    """
    b, h, _ = labels.shape
    if labels.device.type == "cpu" and b > 1:  # per sample: the histogram stays in cache
        parts = [_class_rows(labels[i : i + 1], num_classes) for i in range(b)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    lo, hi = (int(v) for v in labels.aminmax())
    lab = labels
    if lo < 0 or hi > num_classes + 255:  # keep the histogram small: non-classes share one bin
        lab = torch.where((labels < 0) | (labels >= num_classes), num_classes, labels)
        hi = num_classes
    bins = max(hi + 1, num_classes)
    key_dtype = torch.int32 if b * h * bins < 2**31 else torch.int64  # int32: less traffic
    # key = (batch · bins + label) · H + row: counts come out as (B, bins, H), rows contiguous.
    base = torch.arange(h, device=lab.device, dtype=key_dtype).view(1, h, 1)
    base = base + (torch.arange(b, device=lab.device, dtype=key_dtype) * (bins * h)).view(b, 1, 1)
    keys = torch.add(base, lab.to(key_dtype), alpha=h)
    counts = torch.bincount(keys.flatten(), minlength=b * h * bins)
    rows = counts.view(b, bins, h)[:, :num_classes] > 0  # (B, C, H)
    present = rows.any(dim=2)
    # argmax returns the first maximum: the first row holding the class; flipped, the last.
    rows_u8 = rows.to(torch.uint8)
    top = rows_u8.argmax(dim=2)
    bottom = h - 1 - rows_u8.flip(2).argmax(dim=2)
    return present, torch.stack([top, bottom], dim=-1)


def _paste(
    image: torch.Tensor, label: torch.Tensor, entry: _Entry, cls: int, off_y: int, off_x: int
) -> int:
    """Write ``entry``'s masked pixels into one sample in place; returns pixels written.

    ``(off_y, off_x)`` is the top-left corner of the shrunken whole crop in the sample; the part of
    the box that falls outside the sample is clipped.
    """
    height, width = label.shape
    y0, x0 = off_y + entry.top, off_x + entry.left
    h, w = entry.mask.shape
    ya, yb = max(y0, 0), min(y0 + h, height)
    xa, xb = max(x0, 0), min(x0 + w, width)
    if ya >= yb or xa >= xb:
        return 0
    clipped = (ya, yb, xa, xb) != (y0, y0 + h, x0, x0 + w)
    mask = entry.mask[ya - y0 : yb - y0, xa - x0 : xb - x0]
    if mask.device != label.device:
        mask = mask.to(label.device)
    patch = _to(entry.patch[:, ya - y0 : yb - y0, xa - x0 : xb - x0], image)
    img_view = image[:, ya:yb, xa:xb]
    torch.where(mask, patch, img_view, out=img_view)  # elementwise, so writing in place is safe
    lab_view = label[ya:yb, xa:xb]
    lab_view.masked_fill_(mask, cls)
    return int(mask.sum()) if clipped else entry.pixels  # no device sync in the usual case


def _check_sample(image: Any, label: Any, batched: bool) -> None:
    """Validate one sample ((3,H,W), (H,W)) or one batch ((B,3,H,W), (B,H,W))."""
    if not isinstance(image, torch.Tensor) or not isinstance(label, torch.Tensor):
        raise TypeError(
            f"image and label must be torch.Tensor, got {type(image).__name__} and "
            f"{type(label).__name__}; convert them (e.g. torch.from_numpy) before the bank"
        )
    if not image.is_floating_point():
        raise TypeError(f"image must be a float tensor, got dtype {image.dtype}; normalise first")
    if label.is_floating_point() or label.dtype == torch.bool:
        raise TypeError(f"label must be an integer tensor (int64), got dtype {label.dtype}")
    want = ("(B, 3, H, W)", "(B, H, W)") if batched else ("(3, H, W)", "(H, W)")
    ndim = (4, 3) if batched else (3, 2)
    if image.ndim != ndim[0] or label.ndim != ndim[1] or image.shape[-2:] != label.shape[-2:]:
        raise ValueError(
            f"expected image {want[0]} and label {want[1]} with the same H, W; got image "
            f"{tuple(image.shape)} and label {tuple(label.shape)}"
        )
    if batched and image.shape[0] != label.shape[0]:
        raise ValueError(
            f"image batch {image.shape[0]} != label batch {label.shape[0]}; pass matching batches"
        )


class _BankBase:
    """Storage, random state, statistics and (de)serialisation shared by both placements."""

    def __init__(
        self,
        num_classes: int,
        tail_classes: Sequence[int],
        memory_size: int = 5,
        p_sample: float = 1.0,
        p_resize: float = 1.0,
        seed: int | None = None,
        storage_dtype: torch.dtype | None = None,
    ) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        tail = [int(c) for c in tail_classes]
        bad = [c for c in tail if not 0 <= c < num_classes]
        if bad or len(set(tail)) != len(tail):
            raise ValueError(
                f"tail_classes must be distinct ids in [0, {num_classes}), got {tail}; "
                "take them from 'aucseg stats' (groups.tail)"
            )
        if not isinstance(memory_size, int) or memory_size < 0:
            raise ValueError(f"memory_size must be an int >= 0, got {memory_size!r}")
        if not 0.0 <= float(p_sample) <= 1.0:
            raise ValueError(f"p_sample must lie in [0, 1], got {p_sample!r}")
        if not 0.0 < float(p_resize) <= 1.0:
            raise ValueError(
                f"p_resize must lie in (0, 1], got {p_resize!r}: a shrunken crop must fit the crop"
            )
        self.num_classes = num_classes
        self.tail_classes = tail
        self.memory_size = memory_size
        self.p_sample = float(p_sample)
        self.p_resize = float(p_resize)
        self.seed = seed
        if storage_dtype is not None and not storage_dtype.is_floating_point:
            raise TypeError(
                f"storage_dtype must be a float dtype (e.g. torch.float16) or None, got "
                f"{storage_dtype}"
            )
        self.storage_dtype = storage_dtype
        self._rng = random.Random(seed)
        self._tail_sorted = sorted(tail)  # classes are stored in ascending id order
        self._memory: dict[int, list[_Entry]] = {c: [] for c in tail}
        self._device: torch.device | None = None  # where the entries live (batch mode)
        self.reset_stats()

    @classmethod
    def from_stats_file(cls, path: str | Path, **kwargs: Any) -> _BankBase:
        """Build a bank whose classes and tail list come from an ``aucseg stats`` JSON file.

        Args:
            path: file written by ``aucseg stats`` (:func:`aucseg.data.stats.save_class_stats`).
            **kwargs: the other constructor arguments (memory_size, p_sample, ...).
        """
        from aucseg.data.stats import load_class_stats

        data = load_class_stats(path)
        return cls(int(data["num_classes"]), [int(c) for c in data["groups"]["tail"]], **kwargs)

    # ----------------------------------------------------------------- storage and retrieval
    def _store(self, cls: int, entry: _Entry) -> None:
        """Append, or overwrite a uniformly random slot when full (official random replacement)."""
        slots = self._memory[cls]
        if len(slots) < self.memory_size:
            slots.append(entry)
        else:
            slots[self._rng.randint(0, self.memory_size - 1)] = entry
        self._counts["stored"] += 1

    def _draw_missing(self, missing: list[int]) -> list[int]:
        """``ceil(p_sample · #missing)`` distinct missing classes, uniformly (``random.sample``)."""
        k = min(len(missing), math.ceil(len(missing) * self.p_sample))
        return self._rng.sample(missing, k) if k > 0 else []

    def _paste_class(self, image: torch.Tensor, label: torch.Tensor, cls: int) -> None:
        """Paste one stored occurrence of ``cls`` (if any) into one sample, at a random offset."""
        slots = self._memory[cls]
        if not slots:  # empty banks are skipped, as in the official code
            return
        entry = self._rng.choice(slots)
        height, width = label.shape
        off_y = self._randint_between(0, height - entry.crop_h)
        off_x = self._randint_between(0, width - entry.crop_w)
        pixels = _paste(image, label, entry, cls, off_y, off_x)
        self._counts["pastes"] += 1
        self._counts["pixels_pasted"] += pixels
        self._per_class[cls] = self._per_class.get(cls, 0) + 1

    def to(self, device: torch.device | str) -> _BankBase:
        """Move every stored entry to ``device`` (in place); returns the bank."""
        for slots in self._memory.values():
            for entry in slots:
                entry.patch, entry.mask = entry.patch.to(device), entry.mask.to(device)
        return self

    def _randint_between(self, a: int, b: int) -> int:
        """``randint(a, b)`` that also accepts b < a (a stored crop larger than this one)."""
        return self._rng.randint(min(a, b), max(a, b))

    def _store_sample(
        self, image: torch.Tensor, label: torch.Tensor, present: list[int], rows: torch.Tensor
    ) -> None:
        """Store every tail class present in one sample (rows: (C, 2) on the CPU)."""
        if self.memory_size == 0:
            return
        for cls in present:
            top, bottom = rows[cls].tolist()
            entry = _make_entry(image, label, cls, top, bottom, self.p_resize)
            if self.storage_dtype is not None:
                entry.patch = entry.patch.to(self.storage_dtype)
            self._store(cls, entry)

    # ----------------------------------------------------------------- statistics
    def reset_stats(self) -> None:
        """Zero the counters reported by :meth:`stats`."""
        self._counts = {"samples": 0, "stored": 0, "pastes": 0, "pixels_pasted": 0}
        self._per_class: dict[int, int] = {}

    def memory_bytes(self) -> int:
        """Bytes held by all stored entries (image patches and masks)."""
        return sum(e.nbytes() for slots in self._memory.values() for e in slots)

    def stats(self) -> dict[str, float | int | dict]:
        """Counters since the last :meth:`reset_stats`, plus the current fill and memory.

        Returns:
            ``samples``, ``stored``, ``pastes``, ``pixels_pasted``, ``pastes_per_sample``,
            ``per_class_pastes`` ({class id: pastes}), ``entries`` (stored now) and
            ``memory_bytes``.
        """
        samples = self._counts["samples"]
        return {
            **self._counts,
            "pastes_per_sample": self._counts["pastes"] / samples if samples else 0.0,
            "per_class_pastes": dict(sorted(self._per_class.items())),
            "entries": sum(len(s) for s in self._memory.values()),
            "memory_bytes": self.memory_bytes(),
        }

    # ----------------------------------------------------------------- (de)serialisation
    def state_dict(self) -> dict[str, Any]:
        """Memory, random state and counters as tensors, ints, floats, lists and dicts.

        Loadable with ``torch.load(weights_only=True)``; tensors are moved to the CPU.
        """
        version, internal, gauss = self._rng.getstate()
        return {
            "version": _STATE_VERSION,
            "num_classes": self.num_classes,
            "tail_classes": list(self.tail_classes),
            "memory_size": self.memory_size,
            "p_sample": self.p_sample,
            "p_resize": self.p_resize,
            "rng": {
                "version": int(version),
                "state": torch.tensor(internal, dtype=torch.int64),
                "gauss": [] if gauss is None else [float(gauss)],
            },
            "memory": [[e.to_state() for e in self._memory[c]] for c in self.tail_classes],
            "counts": dict(self._counts),
            "per_class": [[c, n] for c, n in sorted(self._per_class.items())],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a bank saved by :meth:`state_dict` of a bank with the same parameters.

        Raises:
            ValueError: when the state's classes, memory size or resize factor differ.
        """
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise ValueError(
                f"not a memory-bank state (version {_STATE_VERSION} dict expected), got "
                f"{type(state).__name__} with version "
                f"{state.get('version') if isinstance(state, dict) else None}"
            )
        for key in ("num_classes", "tail_classes", "memory_size", "p_resize"):
            mine, theirs = getattr(self, key), state[key]
            if (list(mine) if key == "tail_classes" else mine) != theirs:
                raise ValueError(
                    f"memory-bank state has {key}={theirs!r} but this bank has {mine!r}; "
                    "build the bank with the parameters it was saved with"
                )
        rng = state["rng"]
        gauss = rng["gauss"][0] if rng["gauss"] else None
        internal = tuple(int(v) for v in rng["state"].tolist())
        self._rng.setstate((int(rng["version"]), internal, gauss))
        self.p_sample = float(state["p_sample"])
        self._memory = {
            c: [_Entry.from_state(e) for e in entries]
            for c, entries in zip(self.tail_classes, state["memory"], strict=True)
        }
        self._device = torch.device("cpu")
        self._counts = {k: int(v) for k, v in state["counts"].items()}
        self._per_class = {int(c): int(n) for c, n in state["per_class"]}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_classes={self.num_classes}, "
            f"tail_classes=<{len(self.tail_classes)} ids>, memory_size={self.memory_size}, "
            f"p_sample={self.p_sample}, p_resize={self.p_resize}, seed={self.seed})"
        )


class TMemoryBank(_BankBase):
    """Per-sample T-Memory Bank, the official placement (one bank per DataLoader worker).

    Per call: store every tail class present in the sample (random replacement when a class's
    ``memory_size`` slots are full), then paste ``ceil(p_sample · #missing)`` distinct missing tail
    classes, each from one stored occurrence, shrunk by ``p_resize``, at a random offset. Pasted
    pixels overwrite any label, ignore and padding included. Pasted classes are not stored.

    Args:
        num_classes: number of classes C (labels outside [0, C), e.g. 255, are ignore).
        tail_classes: ids of the tail classes (see ``aucseg stats``).
        memory_size: slots per tail class; 0 disables storing (and hence pasting).
        p_sample: fraction of the missing tail classes to paste, in [0, 1].
        p_resize: shrink factor of stored crops, in (0, 1].
        seed: seed of the bank's random generator. Inside a DataLoader worker the generator is
            re-seeded once from the worker's seed so that workers differ.
        storage_dtype: dtype of stored image patches; None keeps the image dtype (exact).
            ``torch.float16`` halves the memory (error <= 1e-3 in normalised units, i.e.
            < 0.1 grey level); pasted values are cast back to the image dtype.

    Shape:
        image (3, H, W) float (normalised, padded), label (H, W) int64; both edited in place and
        returned.
    """

    _worker_seed: int | None = None  # the DataLoader worker seed the generator was re-seeded from

    def _seed_worker(self) -> None:
        """Give each DataLoader worker its own random stream (once, on its first sample).

        ``info.seed`` differs per worker (and per rank when the base seed does), so workers that
        received identical copies of the bank do not paste identically.
        """
        info = torch.utils.data.get_worker_info()
        if info is not None and info.seed != self._worker_seed:
            self._worker_seed = int(info.seed)
            base = 0 if self.seed is None else int(self.seed)
            self._rng.seed(base * 1_000_003 + self._worker_seed)

    @torch.no_grad()
    def __call__(
        self, image: torch.Tensor, label: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the sample's tail classes, then paste missing ones; returns (image, label)."""
        _check_sample(image, label, batched=False)
        self._seed_worker()
        self._counts["samples"] += 1
        if not self.tail_classes:
            return image, label
        present_b, rows_b = _class_rows(label[None], self.num_classes)
        present_mask = present_b[0].cpu()
        rows = rows_b[0].cpu()
        flags = present_mask.tolist()
        tail_present = [c for c in self._tail_sorted if flags[c]]
        missing = [c for c in self.tail_classes if not flags[c]]
        self._store_sample(image, label, tail_present, rows)
        if self.memory_size == 0:
            return image, label
        for cls in self._draw_missing(missing):
            self._paste_class(image, label, cls)
        return image, label


class BatchTMemoryBank(_BankBase):
    """Batch-mode T-Memory Bank for the training loop: one bank, missing = absent from the batch.

    Applied after collation on the training device: every tail class present in a sample is
    stored from that sample; ``ceil(p_sample · #missing)`` tail classes absent from the *whole*
    mini-batch are pasted, each into a uniformly drawn sample of the batch. Stored entries live on
    the device of the images they were cut from (the training device), so pasting costs no host
    transfer; :meth:`state_dict` moves them to the CPU and a loaded state moves to the batches'
    device on the next call. Under DDP each rank owns its bank (stores and pastes its own
    batches; nothing is synchronised), exactly as each official worker owns its bank; a
    checkpoint written by rank 0 restores rank 0's bank on every rank.

    Args: as :class:`TMemoryBank`.

    Shape:
        images (B, 3, H, W) float, labels (B, H, W) int64, any device; edited in place and
        returned.
    """

    @torch.no_grad()
    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the batch's tail classes, then paste the batch's missing ones."""
        _check_sample(images, labels, batched=True)
        if self._device != images.device:  # first call, or after load_state_dict
            self.to(images.device)
            self._device = images.device
        batch = labels.shape[0]
        self._counts["samples"] += batch
        if not self.tail_classes or batch == 0:
            return images, labels
        present, rows = _class_rows(labels, self.num_classes)
        present, rows = present.cpu(), rows.cpu()  # one host sync per batch
        flags = present.tolist()
        for b in range(batch):
            tail_present = [c for c in self._tail_sorted if flags[b][c]]
            self._store_sample(images[b], labels[b], tail_present, rows[b])
        if self.memory_size == 0:
            return images, labels
        in_batch = present.any(dim=0).tolist()
        missing = [c for c in self.tail_classes if not in_batch[c]]
        for cls in self._draw_missing(missing):
            target = self._rng.randrange(batch)
            self._paste_class(images[target], labels[target], cls)
        return images, labels


class MemoryBankTransform:
    """Dataset-pipeline wrapper: applies a :class:`TMemoryBank` to a sample dict.

    Args:
        bank: the per-sample bank (each DataLoader worker process gets its own copy).

    The sample dict must hold ``"image"`` (3, H, W) float and ``"label"`` (H, W) int64 tensors;
    other keys pass through unchanged.
    """

    def __init__(self, bank: TMemoryBank) -> None:
        if not isinstance(bank, TMemoryBank):
            raise TypeError(
                f"bank must be a TMemoryBank, got {type(bank).__name__}; use BatchTMemoryBank "
                "in the training loop instead of a dataset transform"
            )
        self.bank = bank

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with the bank applied to its image and label."""
        if not isinstance(sample, dict) or "image" not in sample or "label" not in sample:
            got = sorted(sample) if isinstance(sample, dict) else type(sample).__name__
            raise TypeError(
                f"MemoryBankTransform expects a dict with 'image' and 'label', got {got}; "
                "place it after the to-tensor/normalise/pad transforms"
            )
        image, label = self.bank(sample["image"], sample["label"])
        return {**sample, "image": image, "label": label}

    def __repr__(self) -> str:
        return f"MemoryBankTransform({self.bank!r})"
