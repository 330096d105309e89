"""The T-Memory Bank (AUCSeg, Han et al., NeurIPS 2024, arXiv 2409.20398, Sec. 3.3): stores
pixels of tail classes and pastes them into crops that lack them.

Two placements share one implementation:

* :class:`TMemoryBank` (and :class:`MemoryBankTransform` for dataset pipelines) works on one
  sample, as the official transform does: every DataLoader worker owns its own bank.
* :class:`BatchTMemoryBank` works on a collated mini-batch in the training loop, on the training
  device, with a single bank; it pastes the classes missing from the whole mini-batch.

What is stored: for one occurrence of class ``c`` in a crop of size (H, W), the crop is shrunk by
``p_resize`` to (int(H·p), int(W·p)) exactly as the official code shrinks the whole crop (image
bilinear with half-pixel centres, mask nearest with ``floor(i·H/H')`` sampling), but only inside
the class's bounding box: the entry holds the shrunken box's image values (3, h, w) in the
``storage`` precision, its mask (h, w) (none when the class fills its box), the box position in
the shrunken crop and the shrunken crop size. Pasting draws the top-left offset of the shrunken
*whole* crop exactly as the official code does (``randint(0, H - H')``, ``randint(0, W - W')``)
and writes the masked pixels where the whole crop would have put them; the written values equal
the stored ones exactly. Entries are copies, never views of the sample.

Ablations of the paper (its memory-update and TMB-vs-PMB studies): ``update`` is the
replacement rule of a full class memory (``random``, the official one; ``fifo`` replaces the
oldest entry, ``lifo`` the newest) and ``classes='all'`` keeps every class (the paper's
pixel-level memory bank) instead of the tail classes only.

Random decisions (replacement slot, sampled classes, stored entry, offsets, target sample in
batch mode) use one :class:`random.Random` per bank, in the same order as the official code.
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from aucseg.augment.bank_ops import (
    Box,
    Entry,
    class_boxes,
    class_boxes_cpu,
    cut_entry,
    paste,
)
from aucseg.augment.bank_state import STATE_VERSION, check_state
from aucseg.data.stats import load_class_stats
from aucseg.errors import InputError

__all__ = ["BatchTMemoryBank", "MemoryBankTransform", "TMemoryBank"]

_UPDATES = ("random", "fifo", "lifo")
_CLASS_SETS = ("tail", "all")
_STORAGES = ("uint8", "float16", "float32")


def _check_sample(image: Any, label: Any, batched: bool) -> None:
    """Validate one sample ((3,H,W), (H,W)) or one batch ((B,3,H,W), (B,H,W)), none empty."""
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
        raise InputError(
            f"expected image {want[0]} and label {want[1]} with the same H, W; got image "
            f"{tuple(image.shape)} and label {tuple(label.shape)}"
        )
    if batched and image.shape[0] != label.shape[0]:
        raise InputError(
            f"image batch {image.shape[0]} != label batch {label.shape[0]}; pass matching batches"
        )
    if 0 in label.shape:
        raise InputError(
            f"got an empty {'batch' if batched else 'sample'}: image {tuple(image.shape)}, label "
            f"{tuple(label.shape)}; the bank needs {'B >= 1 and ' if batched else ''}H, W >= 1 "
            "(drop empty batches and crops before it)"
        )


def _need(ok: bool, name: str, value: Any, allowed: str) -> None:
    """Raise the one-line InputError of a bad constructor argument."""
    if not ok:
        raise InputError(f"{name} must be {allowed}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _memory_classes(num_classes: int, tail_classes: Sequence[int] | None, classes: str) -> list:
    """The classes the bank stores, in the order of the missing-class draw."""
    if classes == "all":
        return list(range(num_classes))
    if tail_classes is None:
        raise InputError(
            "tail_classes is None with classes='tail'; pass tail_classes (e.g. groups.tail of "
            "'aucseg stats') or classes='all' for the bank of every class"
        )
    if isinstance(tail_classes, str | bytes) or not isinstance(tail_classes, Iterable):
        raise TypeError(f"tail_classes must be a sequence of ints, got {tail_classes!r}")
    tail = [int(c) if _is_int(c) else c for c in tail_classes]
    bad = [c for c in tail if not _is_int(c) or not 0 <= c < num_classes]
    _need(
        not bad and len(set(tail)) == len(tail),
        "tail_classes",
        tail,
        f"distinct ids in [0, {num_classes}) (take them from 'aucseg stats', groups.tail)",
    )
    return tail


def _check_arguments(
    num_classes: Any, memory_size: Any, p_sample: Any, p_resize: Any, seed: Any, options: dict
) -> None:
    """Raise InputError (TypeError for a non-number) naming the first bad argument."""
    for name, value in (("num_classes", num_classes), ("memory_size", memory_size)):
        if not _is_int(value):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    for name, value in (("p_sample", p_sample), ("p_resize", p_resize)):
        if not _is_number(value):
            raise TypeError(f"{name} must be a float, got {type(value).__name__} {value!r}")
    if seed is not None and not _is_int(seed):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__} {seed!r}")
    _need(num_classes >= 1, "num_classes", num_classes, "an int >= 1")
    _need(memory_size >= 0, "memory_size", memory_size, "an int >= 0 (0 disables the bank)")
    _need(0.0 <= p_sample <= 1.0, "p_sample", p_sample, "a number in [0, 1]")
    _need(0.0 < p_resize <= 1.0, "p_resize", p_resize, "in (0, 1] (a shrunken crop must fit)")
    for name, (value, allowed) in options.items():
        _need(value in allowed, name, value, "one of " + ", ".join(map(repr, allowed)))


class _BankBase:
    """Storage, random state, statistics and (de)serialisation shared by both placements.

    Args:
        num_classes: number of classes C (labels outside [0, C), e.g. 255, are ignore).
        tail_classes: ids of the tail classes (see ``aucseg stats``); ignored (may be None)
            when ``classes='all'``.
        memory_size: slots per class; 0 disables storing (and hence pasting).
        p_sample: fraction of the missing classes to paste, in [0, 1].
        p_resize: shrink factor of stored crops, in (0, 1].
        seed: seed of the bank's random generator.
        update: replacement in a full class memory: ``random`` (a uniform slot, official),
            ``fifo`` (the oldest entry) or ``lifo`` (the newest entry).
        classes: ``tail`` stores and pastes ``tail_classes``; ``all`` every class.
        storage: precision of the stored image values. ``float32`` is exact (official);
            ``float16`` (default) halves the memory, error <= 2^-11 relative (< 0.1 grey level
            on normalised images; values beyond ±65504 overflow); ``uint8`` quarters it, each
            entry channel quantised between its minimum and maximum (error <= range / 510, about
            half a grey level). Pastes write the stored values exactly.
    """

    _host_resize = False  # OpenCV for large CPU boxes (the batch bank stays sync-free)

    def __init__(
        self,
        num_classes: int,
        tail_classes: Sequence[int] | None = None,
        memory_size: int = 5,
        p_sample: float = 1.0,
        p_resize: float = 1.0,
        seed: int | None = None,
        update: Literal["random", "fifo", "lifo"] = "random",
        classes: Literal["tail", "all"] = "tail",
        storage: Literal["uint8", "float16", "float32"] = "float16",
    ) -> None:
        options = {
            "update": (update, _UPDATES),
            "classes": (classes, _CLASS_SETS),
            "storage": (storage, _STORAGES),
        }
        _check_arguments(num_classes, memory_size, p_sample, p_resize, seed, options)
        num_classes, memory_size = int(num_classes), int(memory_size)
        self._classes = _memory_classes(num_classes, tail_classes, classes)
        self.num_classes = num_classes
        self.tail_classes = None if classes == "all" else list(self._classes)
        self.memory_size = memory_size
        self.p_sample = float(p_sample)
        self.p_resize = float(p_resize)
        self.seed = None if seed is None else int(seed)
        self.update = update
        self.classes = classes
        self.storage = storage
        self._rng = random.Random(self.seed)
        self._sorted = sorted(self._classes)  # classes are stored in ascending id order
        self._memory: dict[int, list[Entry]] = {c: [] for c in self._classes}
        self._writes: dict[int, int] = dict.fromkeys(self._classes, 0)  # entries ever stored
        self._device: torch.device | None = None  # where the entries live (batch mode)
        self._index: dict[torch.device, torch.Tensor] = {}  # self._sorted on each device
        self.reset_stats()

    @property
    def memory_classes(self) -> list[int]:
        """The classes the bank stores and pastes (the tail list, or every class)."""
        return list(self._classes)

    @classmethod
    def from_stats_file(cls, path: str | Path, **kwargs: Any) -> _BankBase:
        """Build a bank whose classes and tail list come from an ``aucseg stats`` JSON file.

        Args:
            path: file written by ``aucseg stats`` (:func:`aucseg.data.stats.save_class_stats`).
            **kwargs: the other constructor arguments (memory_size, p_sample, ...).
        """
        data = load_class_stats(path)
        return cls(int(data["num_classes"]), [int(c) for c in data["groups"]["tail"]], **kwargs)

    # ----------------------------------------------------------------- storage and retrieval
    def _slot_to_replace(self, cls: int) -> int:
        """Slot overwritten when ``cls``'s memory is full, by the ``update`` rule."""
        if self.update == "random":  # official: a uniformly random slot
            return self._rng.randint(0, self.memory_size - 1)
        if self.update == "fifo":  # slots were filled 0, 1, ... and are overwritten in turn
            return self._writes[cls] % self.memory_size
        return self.memory_size - 1  # lifo: the newest entry always sits in the last slot

    def _store(self, cls: int, entry: Entry) -> None:
        """Append, or overwrite the slot the ``update`` rule picks when the memory is full."""
        slots = self._memory[cls]
        if len(slots) < self.memory_size:
            slots.append(entry)
        else:
            slots[self._slot_to_replace(cls)] = entry
        self._writes[cls] += 1
        self._counts["stored"] += 1

    def _store_sample(
        self, image: torch.Tensor, label: torch.Tensor, present: list[tuple[int, Box]]
    ) -> None:
        """Store every (class, box) of one sample, in the given (ascending) order."""
        for cls, box in present:
            entry = cut_entry(
                image, label, cls, box, self.p_resize, self.storage, self._host_resize
            )
            self._store(cls, entry)

    def _draw_missing(self, missing: list[int]) -> list[int]:
        """``ceil(p_sample · #missing)`` distinct missing classes, uniformly (``random.sample``)."""
        k = min(len(missing), math.ceil(len(missing) * self.p_sample))
        return self._rng.sample(missing, k) if k > 0 else []

    def _paste_class(self, image: torch.Tensor, label: torch.Tensor, cls: int) -> None:
        """Paste one stored occurrence of ``cls`` (if any) into one sample, at a random offset."""
        slots = self._memory[cls]
        if not slots:  # empty memories are skipped, as in the official code
            return
        entry = self._rng.choice(slots)
        height, width = label.shape
        off_y = self._randint_between(0, height - entry.crop_h)
        off_x = self._randint_between(0, width - entry.crop_w)
        pixels = paste(image, label, entry, cls, off_y, off_x)
        self._counts["pastes"] += 1
        self._pixels_pasted = self._pixels_pasted + pixels  # a device tensor stays one
        self._per_class[cls] = self._per_class.get(cls, 0) + 1

    def _randint_between(self, a: int, b: int) -> int:
        """``randint(a, b)`` that also accepts b < a (a stored crop larger than this one)."""
        return self._rng.randint(min(a, b), max(a, b))

    def _class_index(self, device: torch.device) -> torch.Tensor:
        """The stored classes (ascending) as an int64 tensor on ``device`` (cached)."""
        if device not in self._index:
            self._index[device] = torch.tensor(self._sorted, dtype=torch.int64, device=device)
        return self._index[device]

    def to(self, device: torch.device | str) -> _BankBase:
        """Move every stored entry to ``device`` (in place); returns the bank."""
        for slots in self._memory.values():
            for entry in slots:
                entry.to(device)
        if isinstance(self._pixels_pasted, torch.Tensor):
            self._pixels_pasted = self._pixels_pasted.to(device)
        return self

    # ----------------------------------------------------------------- statistics
    def reset_stats(self) -> None:
        """Zero the counters reported by :meth:`stats`."""
        self._counts = {"samples": 0, "stored": 0, "pastes": 0}
        self._pixels_pasted: int | torch.Tensor = 0  # summed on the device: no sync per paste
        self._per_class: dict[int, int] = {}

    def memory_bytes(self) -> int:
        """Bytes held by all stored entries (image values, masks, quantisation tables)."""
        return sum(e.nbytes() for slots in self._memory.values() for e in slots)

    def stats(self) -> dict[str, float | int | dict]:
        """Counters since the last :meth:`reset_stats`, plus the current fill and memory.

        One host sync (the pasted-pixel count): call it at log time.

        Returns:
            ``samples``, ``stored``, ``pastes``, ``pixels_pasted``, ``pastes_per_sample``,
            ``per_class_pastes`` ({class id: pastes}), ``entries`` (stored now) and
            ``memory_bytes``.
        """
        samples = self._counts["samples"]
        return {
            **self._counts,
            "pixels_pasted": int(self._pixels_pasted),
            "pastes_per_sample": self._counts["pastes"] / samples if samples else 0.0,
            "per_class_pastes": dict(sorted(self._per_class.items())),
            "entries": sum(len(s) for s in self._memory.values()),
            "memory_bytes": self.memory_bytes(),
        }

    # ----------------------------------------------------------------- (de)serialisation
    def _parameters(self) -> dict[str, Any]:
        """The values a loaded state must match (see :data:`bank_state.PARAMETERS`)."""
        return {
            "num_classes": self.num_classes,
            "classes": self.classes,
            "memory_classes": list(self._classes),
            "memory_size": self.memory_size,
            "p_resize": self.p_resize,
            "update": self.update,
            "storage": self.storage,
        }

    def state_dict(self) -> dict[str, Any]:
        """Memory, random state and counters as tensors, ints, floats, strings, lists and dicts.

        Loadable with ``torch.load(weights_only=True)``; tensors are moved to the CPU (one host
        sync per entry: call it at checkpoint time).
        """
        version, internal, gauss = self._rng.getstate()
        return {
            "version": STATE_VERSION,
            **self._parameters(),
            "p_sample": self.p_sample,
            "rng": {
                "version": int(version),
                "state": torch.tensor(internal, dtype=torch.int64),
                "gauss": [] if gauss is None else [float(gauss)],
            },
            "memory": [[e.to_state() for e in self._memory[c]] for c in self._classes],
            "writes": [self._writes[c] for c in self._classes],
            "counts": {**self._counts, "pixels_pasted": int(self._pixels_pasted)},
            "per_class": [[c, n] for c, n in sorted(self._per_class.items())],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a bank saved by :meth:`state_dict` of a bank with the same parameters.

        ``p_sample`` stays this bank's own (it changes no stored data).

        Raises:
            CheckpointError: (an InputError) naming the missing or malformed key, or the
                parameter (classes, memory size, resize factor, update, storage) that differs.
        """
        check_state(state, self._parameters())
        rng = state["rng"]
        gauss = rng["gauss"][0] if rng["gauss"] else None
        internal = tuple(int(v) for v in rng["state"].tolist())
        self._rng.setstate((int(rng["version"]), internal, gauss))
        self._memory = {
            c: [Entry.from_state(e) for e in entries]
            for c, entries in zip(self._classes, state["memory"], strict=True)
        }
        self._writes = {c: int(n) for c, n in zip(self._classes, state["writes"], strict=True)}
        self._device = torch.device("cpu")
        counts = state["counts"]
        self._counts = {k: int(counts[k]) for k in ("samples", "stored", "pastes")}
        self._pixels_pasted = int(counts["pixels_pasted"])
        self._per_class = {int(c): int(n) for c, n in state["per_class"]}

    def __repr__(self) -> str:
        tail = "None" if self.tail_classes is None else f"<{len(self.tail_classes)} ids>"
        return (
            f"{type(self).__name__}(num_classes={self.num_classes}, tail_classes={tail}, "
            f"memory_size={self.memory_size}, p_sample={self.p_sample}, "
            f"p_resize={self.p_resize}, seed={self.seed}, update={self.update!r}, "
            f"classes={self.classes!r}, storage={self.storage!r})"
        )


class TMemoryBank(_BankBase):
    """Per-sample T-Memory Bank, the official placement (one bank per DataLoader worker).

    Per call: store every bank class present in the sample (``update`` rule when a class's
    ``memory_size`` slots are full), then paste ``ceil(p_sample · #missing)`` distinct missing
    bank classes, each from one stored occurrence, shrunk by ``p_resize``, at a random offset.
    Pasted pixels overwrite any label, ignore and padding included. Pasted classes are not
    stored. Inside a DataLoader worker the generator is re-seeded once from the worker's seed so
    that workers differ.

    Args: as :class:`_BankBase` (num_classes, tail_classes, memory_size, p_sample, p_resize, seed,
    update, classes, storage).

    Shape:
        image (3, H, W) float (normalised, padded), label (H, W) int64; both edited in place and
        returned. H, W >= 1, else :class:`~aucseg.errors.InputError`.
    """

    _worker_seed: int | None = None  # the DataLoader worker seed the generator was re-seeded from
    _host_resize = True  # CPU samples in DataLoader workers: OpenCV for large boxes

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

    def _boxes(self, label: torch.Tensor) -> dict[int, Box]:
        """Box of every bank class in one sample (NumPy run lengths on the CPU)."""
        if label.device.type == "cpu":
            boxes = class_boxes_cpu(label, self.num_classes)
            return {c: boxes[c] for c in self._sorted}
        table = class_boxes(label[None], self._class_index(label.device), self.num_classes)
        return dict(zip(self._sorted, table[0].tolist(), strict=True))

    @torch.no_grad()
    def __call__(
        self, image: torch.Tensor, label: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the sample's bank classes, then paste missing ones; returns (image, label)."""
        _check_sample(image, label, batched=False)
        self._seed_worker()
        self._counts["samples"] += 1
        if not self._classes or self.memory_size == 0:
            return image, label
        boxes = self._boxes(label)
        self._store_sample(image, label, [(c, boxes[c]) for c in self._sorted if boxes[c][0]])
        missing = [c for c in self._classes if not boxes[c][0]]
        for cls in self._draw_missing(missing):
            self._paste_class(image, label, cls)
        return image, label


class BatchTMemoryBank(_BankBase):
    """Batch-mode T-Memory Bank for the training loop: one bank, missing = absent from the batch.

    Applied after collation on the training device: every bank class present in a sample is
    stored from that sample; ``ceil(p_sample · #missing)`` bank classes absent from the *whole*
    mini-batch are pasted, each into a uniformly drawn sample of the batch. Stored entries live on
    the device of the images they were cut from (the training device), so pasting costs no host
    transfer; :meth:`state_dict` moves them to the CPU and a loaded state moves to the batches'
    device on the next call. Under DDP each rank owns its bank (stores and pastes its own
    batches; nothing is synchronised), exactly as each official worker owns its bank; a
    checkpoint written by rank 0 restores rank 0's bank on every rank.

    Host syncs: exactly one per call, whatever the number of stored or pasted entries (the
    (B, K, 5) table of class counts and boxes comes to the host in one ``tolist``); none when
    ``memory_size`` is 0 or the bank has no classes. :meth:`stats` adds one at log time.

    Args: as :class:`_BankBase` (num_classes, tail_classes, memory_size, p_sample, p_resize, seed,
    update, classes, storage).

    Shape:
        images (B, 3, H, W) float, labels (B, H, W) int64, any device; edited in place and
        returned. B, H, W >= 1, else :class:`~aucseg.errors.InputError`.
    """

    @torch.no_grad()
    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the batch's bank classes, then paste the batch's missing ones."""
        _check_sample(images, labels, batched=True)
        if self._device != images.device:  # first call, or after load_state_dict
            self.to(images.device)
            self._device = images.device
        batch = labels.shape[0]
        self._counts["samples"] += batch
        if not self._classes or self.memory_size == 0:
            return images, labels
        index = self._class_index(labels.device)
        table = class_boxes(labels, index, self.num_classes).tolist()  # the one host sync
        in_batch: set[int] = set()
        for b in range(batch):
            present = [(c, box) for c, box in zip(self._sorted, table[b], strict=True) if box[0]]
            in_batch.update(c for c, _ in present)
            self._store_sample(images[b], labels[b], present)
        missing = [c for c in self._classes if c not in in_batch]
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
