"""The endless, resumable training DataLoader: a sampler stream plus per-sample seeding."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from aucseg.data.samplers import build_sampler, sample_seed
from aucseg.errors import InputError

__all__ = ["SeededSamples", "make_train_loader"]


class SeededSamples(Dataset):
    """Wraps a dataset so that item ``(index, seed)`` is produced under that seed.

    Python, NumPy and torch RNGs are seeded before the item is loaded and restored afterwards,
    so random augmentations depend only on the sample's stream position.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


def make_train_loader(
    dataset: Dataset,
    batch_size: int,
    consumed_batches: int = 0,
    seed: int = 0,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    worker_init_fn: Callable[[int], None] | None = None,
    pin_memory: bool = False,
    sampler: str = "uniform",
    sampler_options: Mapping[str, Any] | None = None,
    image_class_pixels: Sequence[Mapping[int, int]] | None = None,
) -> DataLoader:
    """Endless training DataLoader continuing after ``consumed_batches`` batches of this rank.

    Batches are deterministic functions of (seed, stream position), whatever ``num_workers``.

    Args:
        dataset: the training dataset (with its training transforms).
        batch_size: samples per batch on this rank.
        consumed_batches: batches this rank has already drawn (resume point).
        seed: run seed.
        num_workers, worker_init_fn, pin_memory: as ``torch.utils.data.DataLoader``.
        rank, world_size: this process's place in the job.
        sampler: a name of :data:`aucseg.data.samplers.SAMPLERS`.
        sampler_options: that sampler's own options (e.g. ``{"temperature": 0.01}``).
        image_class_pixels: per-image ``{class id: pixels}`` in dataset order, for the
            long-tail samplers (:func:`aucseg.data.stats.load_image_class_pixels`).

    Returns:
        A DataLoader over :class:`SeededSamples` driven by the sampler's stream.

    Raises:
        InputError: batch_size < 1, or a bad sampler name, option or class-pixel list.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    stream = build_sampler(
        sampler,
        len(dataset),  # type: ignore[arg-type]
        seed=seed,
        rank=rank,
        world_size=world_size,
        start=consumed_batches * batch_size,
        image_class_pixels=image_class_pixels,
        **dict(sampler_options or {}),
    )
    return DataLoader(
        SeededSamples(dataset),
        batch_size=batch_size,
        sampler=stream,
        num_workers=num_workers,
        drop_last=True,
        worker_init_fn=worker_init_fn,
        pin_memory=pin_memory,
        persistent_workers=False,
        # an explicit generator keeps the loader from drawing on the global torch RNG
        generator=torch.Generator().manual_seed(sample_seed(seed, 0, stream=2)),
    )
