"""Training data order: endless, seeded, resumable streams of dataset indices, sliced by rank.

Every sampler here defines one *global stream*: the dataset index at each global position
``p = 0, 1, 2, ...`` is a pure function of ``(seed, p)``. Rank ``r`` of ``W`` takes the global
positions ``r, r + W, r + 2W, ...`` (as detectron2's ``TrainingSampler``), and ``start`` is the
number of positions this rank has already consumed, so a resumed run continues the stream
exactly. Each yielded item is ``(index, sample_seed(seed, p))``: the seed under which
:class:`aucseg.data.loader.SeededSamples` loads and augments the sample, independent of the
number of workers.

Registry :data:`SAMPLERS`:

* ``uniform`` (:class:`ResumableSampler`): concatenated seeded permutations of the dataset.
* ``rare_class`` (:class:`RareClassSampler`): rare-class sampling of DAFormer (Hoyer et al.,
  "DAFormer: Improving Network Architectures and Training Strategies for Domain-Adaptive
  Semantic Segmentation", CVPR 2022): a class ``c`` with probability
  ``∝ exp((1 - f_c) / T)``, ``f_c`` its share of the labelled pixels, then a uniformly random
  image holding at least ``min_pixels`` pixels of ``c``.
* ``repeat_factor`` (:class:`RepeatFactorSampler`): repeat factor sampling of LVIS (Gupta et
  al., "LVIS: A Dataset for Large Vocabulary Instance Segmentation", CVPR 2019): image ``i``
  appears ``r_i = max_{c in i} max(1, sqrt(t / f_c))`` times per epoch on average, ``f_c`` the
  fraction of images containing ``c``; the fractional part is rounded stochastically per epoch.

Seed streams (the ``stream`` argument of :func:`sample_seed`): 0 sample seeds, 1 epoch
permutations, 2 the DataLoader generator, ``3 + rank`` the trainer's per-rank seeds; the
long-tail samplers use streams from :data:`LONG_TAIL_STREAM` on, clear of any rank.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Sampler

from aucseg.errors import InputError

__all__ = [
    "ENGINE_INPUTS",
    "SAMPLERS",
    "RareClassSampler",
    "RepeatFactorSampler",
    "ResumableSampler",
    "StreamSampler",
    "build_sampler",
    "rare_class_probabilities",
    "repeat_factors",
    "sample_seed",
    "sampler_options",
]

#: Constructor arguments the engine fills in; every other argument is a user option.
ENGINE_INPUTS: tuple[str, ...] = (
    "size",
    "seed",
    "rank",
    "world_size",
    "start",
    "image_class_pixels",
)
#: First seed stream of the long-tail samplers (far above ``3 + rank`` of any world size).
LONG_TAIL_STREAM = 1 << 20

ClassPixels = Sequence[Mapping[int, int]]


def sample_seed(seed: int, position: int, stream: int = 0) -> int:
    """A 32-bit seed derived from ``(seed, stream, position)``, e.g. of the sample at global
    stream ``position`` (independent of workers and restarts). ``stream`` separates uses."""
    entropy = [int(seed) % 2**63, int(stream), int(position)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class StreamSampler(Sampler, ABC):
    """Base of the training samplers: one global stream of indices, sliced by rank.

    Subclasses implement :meth:`index_at` (the dataset index at a global position, a pure
    function of ``(seed, position)``).

    Args:
        size: dataset length.
        seed: run seed.
        rank: this process's rank.
        world_size: number of processes.
        start: samples this rank has already consumed (``iteration * accumulation *
            batch_size`` on resume).

    Raises:
        InputError: an empty dataset, or rank / world size / start out of range.
    """

    #: Whether the sampler needs ``image_class_pixels`` (the per-image class pixel counts).
    needs_class_pixels: ClassVar[bool] = False

    def __init__(
        self, size: int, seed: int = 0, rank: int = 0, world_size: int = 1, start: int = 0
    ) -> None:
        if size < 1:
            raise InputError(f"the training dataset is empty (size {size}); check data.root")
        if world_size < 1 or not 0 <= rank < world_size:
            raise InputError(f"rank {rank} of world size {world_size}: need 0 <= rank < world")
        if start < 0:
            raise InputError(f"start must be >= 0 (samples already consumed), got {start}")
        self.size, self.seed = int(size), int(seed)
        self.rank, self.world_size, self.start = int(rank), int(world_size), int(start)

    @abstractmethod
    def index_at(self, position: int) -> int:
        """Dataset index at global stream ``position``."""

    def __iter__(self) -> Iterator[tuple[int, int]]:
        pos = self.start
        while True:
            global_pos = pos * self.world_size + self.rank
            yield self.index_at(global_pos), sample_seed(self.seed, global_pos)
            pos += 1

    def __len__(self) -> int:  # endless; DataLoader only needs a length for progress estimates
        return 2**62


class ResumableSampler(StreamSampler):
    """Uniform stream: concatenated permutations of ``range(size)``.

    Epoch ``e`` (global positions ``e * size ... (e + 1) * size - 1``) is a permutation shuffled
    with seed ``(seed, e)``. Arguments as :class:`StreamSampler`, plus ``shuffle`` (permute each
    epoch; else sequential order).
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
    ) -> None:
        super().__init__(size, seed, rank, world_size, start)
        self.shuffle = bool(shuffle)
        self._epoch, self._perm = -1, torch.arange(self.size)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        gen = torch.Generator().manual_seed(sample_seed(self.seed, epoch, stream=1))
        return torch.randperm(self.size, generator=gen)

    def index_at(self, position: int) -> int:
        """Dataset index at global stream ``position``."""
        epoch, offset = divmod(position, self.size)
        if epoch != self._epoch:
            self._epoch, self._perm = epoch, self._permutation(epoch)
        return int(self._perm[offset])


def _flatten(image_class_pixels: ClassPixels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class id, pixel count, image id) of every (image, class) entry, as three (K,) arrays.

    Raises:
        InputError: a negative class id or pixel count.
    """
    sizes = [len(d) for d in image_class_pixels]
    img = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    cls = np.fromiter((c for d in image_class_pixels for c in d), np.int64, count=img.size)
    pix = np.fromiter((n for d in image_class_pixels for n in d.values()), np.int64, img.size)
    if (cls < 0).any() or (pix < 0).any():
        raise InputError(
            "image_class_pixels holds a negative class id or pixel count; re-run 'aucseg stats'"
        )
    return cls, pix, img


def _check_class_pixels(image_class_pixels: ClassPixels | None, size: int, name: str) -> None:
    """Raise InputError unless there is one class -> pixels mapping per dataset image."""
    if image_class_pixels is None:
        raise InputError(
            f"sampler {name!r} needs the per-image class pixel counts (image_class_pixels); "
            "run 'aucseg stats' on the training split and load them with "
            "aucseg.data.load_image_class_pixels"
        )
    if len(image_class_pixels) != size:
        raise InputError(
            f"sampler {name!r} got class pixel counts of {len(image_class_pixels)} images for a "
            f"dataset of {size}; re-run 'aucseg stats' on the training split"
        )


def rare_class_probabilities(
    image_class_pixels: ClassPixels, temperature: float = 0.01, min_pixels: int = 3000
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Class probabilities and candidate images of rare-class sampling (DAFormer).

    ``f_c`` = pixels of class ``c`` / all labelled pixels; ``P(c) ∝ exp((1 - f_c) / T)`` over
    the *eligible* classes, those with at least one image holding ``>= min_pixels`` pixels of
    ``c`` (DAFormer stops on a class without one; here it is left out).

    Args:
        image_class_pixels: per image, ``{class id: pixel count}`` of the classes it holds.
        temperature: T > 0; smaller concentrates on the rarest classes.
        min_pixels: pixels of ``c`` an image needs to be drawn for ``c``.

    Returns:
        ``(classes, probs, images)``: eligible class ids (ascending), their probabilities, and
        per eligible class the ascending ids of its candidate images.

    Raises:
        InputError: T <= 0, min_pixels < 0, or no class is eligible.
    """
    if not temperature > 0:
        raise InputError(f"rare_class temperature must be > 0, got {temperature}")
    if min_pixels < 0:
        raise InputError(f"rare_class min_pixels must be >= 0, got {min_pixels}")
    cls, pix, img = _flatten(image_class_pixels)
    keep = pix >= max(min_pixels, 1)
    classes = np.unique(cls[keep])
    if classes.size == 0:
        raise InputError(
            f"rare_class: no image holds >= {min_pixels} pixels of any class; lower "
            "min_pixels (e.g. to the pixels of a small object in your crops)"
        )
    totals = np.bincount(cls, weights=pix)
    freq = totals[classes] / totals.sum()
    logits = (1.0 - freq) / temperature
    probs = np.exp(logits - logits.max())
    order = np.lexsort((img[keep], cls[keep]))  # by class, then image
    bounds = np.searchsorted(cls[keep][order], classes, side="right")
    images = np.split(img[keep][order], bounds[:-1])
    return classes, probs / probs.sum(), images


class RareClassSampler(StreamSampler):
    """Rare-class sampling (DAFormer, Hoyer et al. CVPR 2022): a class, then an image with it.

    At global position ``p`` a generator seeded by ``sample_seed(seed, p, LONG_TAIL_STREAM)``
    draws class ``c`` with :func:`rare_class_probabilities`, then one of its candidate images
    uniformly; draws at different positions are independent. The pixel counts are those of the
    full label maps; unlike DAFormer, the random crop is not re-drawn until it holds ``c``
    (the crop belongs to the pipeline, which ``RandomCrop(cat_max_ratio)`` already steers).

    Args:
        size, seed, rank, world_size, start: as :class:`StreamSampler`.
        image_class_pixels: per dataset image, ``{class id: pixel count}``
            (:func:`aucseg.data.stats.load_image_class_pixels`).
        temperature: T of ``P(c) ∝ exp((1 - f_c) / T)``.
        min_pixels: pixels of ``c`` an image needs to be drawn for ``c``.

    Raises:
        InputError: missing or mismatched counts, or bad options.
    """

    needs_class_pixels = True

    def __init__(
        self,
        size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        image_class_pixels: ClassPixels | None = None,
        temperature: float = 0.01,
        min_pixels: int = 3000,
    ) -> None:
        super().__init__(size, seed, rank, world_size, start)
        _check_class_pixels(image_class_pixels, self.size, "rare_class")
        self.temperature, self.min_pixels = float(temperature), int(min_pixels)
        self.classes, self.probs, self.images = rare_class_probabilities(
            image_class_pixels, self.temperature, self.min_pixels
        )
        self._cdf = np.cumsum(self.probs)

    def index_at(self, position: int) -> int:
        """Dataset index at global stream ``position``."""
        rng = np.random.default_rng(sample_seed(self.seed, position, LONG_TAIL_STREAM))
        u_class, u_image = rng.random(2)
        k = min(int(np.searchsorted(self._cdf, u_class, side="right")), self._cdf.size - 1)
        members = self.images[k]
        return int(members[min(int(u_image * members.size), members.size - 1)])


def repeat_factors(image_class_pixels: ClassPixels, threshold: float) -> np.ndarray:
    """Per-image repeat factors of LVIS repeat factor sampling (Gupta et al. CVPR 2019).

    ``f_c`` = fraction of images containing class ``c`` (any pixel count > 0),
    ``r_c = max(1, sqrt(t / f_c))``, ``r_i = max over classes c in image i of r_c`` (1 for an
    image without labelled pixels).

    Args:
        image_class_pixels: per image, ``{class id: pixel count}``.
        threshold: t; classes in fewer than a fraction t of the images are repeated.

    Returns:
        (N,) float64 factors >= 1.

    Raises:
        InputError: threshold <= 0.
    """
    if not threshold > 0:
        raise InputError(f"repeat_factor threshold must be > 0, got {threshold}")
    cls, pix, img = _flatten(image_class_pixels)
    cls, img = cls[pix > 0], img[pix > 0]
    factors = np.ones(len(image_class_pixels))
    if cls.size:
        frac = np.bincount(cls) / len(image_class_pixels)
        with np.errstate(divide="ignore"):  # absent classes: inf factor, never looked up
            class_factor = np.maximum(1.0, np.sqrt(threshold / frac))
        np.maximum.at(factors, img, class_factor[cls])
    return factors


class RepeatFactorSampler(StreamSampler):
    """Repeat factor sampling (LVIS, Gupta et al. CVPR 2019) as an endless epoch stream.

    Epoch ``e`` holds image ``i`` ``floor(r_i) + [u_i < frac(r_i)]`` times, ``u_i`` uniform
    from a generator seeded by ``(seed, e)``, shuffled by a second one: each image appears
    ``r_i`` times per epoch on average (detectron2's stochastic rounding). Epoch lengths vary;
    their running ends are cached, so resuming at ``start`` replays only the rounding draws.

    Args:
        size, seed, rank, world_size, start: as :class:`StreamSampler`.
        image_class_pixels: per dataset image, ``{class id: pixel count}``.
        threshold: t of ``r_c = max(1, sqrt(t / f_c))`` (LVIS uses 0.001).

    Raises:
        InputError: missing or mismatched counts, or threshold <= 0.
    """

    needs_class_pixels = True

    def __init__(
        self,
        size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        image_class_pixels: ClassPixels | None = None,
        threshold: float = 0.001,
    ) -> None:
        super().__init__(size, seed, rank, world_size, start)
        _check_class_pixels(image_class_pixels, self.size, "repeat_factor")
        self.threshold = float(threshold)
        self.factors = repeat_factors(image_class_pixels, self.threshold)
        self._ends: list[int] = []  # _ends[e] = first global position after epoch e
        self._begin, self._order = 0, np.zeros(0, np.int64)  # the epoch last looked up

    def _repeats(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng(sample_seed(self.seed, epoch, LONG_TAIL_STREAM + 1))
        whole = np.floor(self.factors)
        return (whole + (rng.random(self.size) < self.factors - whole)).astype(np.int64)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        order = np.repeat(np.arange(self.size), self._repeats(epoch))
        rng = np.random.default_rng(sample_seed(self.seed, epoch, LONG_TAIL_STREAM + 2))
        return order[rng.permutation(order.size)]

    def epoch_ends(self, num_epochs: int) -> list[int]:
        """First global position after each of the first ``num_epochs`` epochs."""
        while len(self._ends) < num_epochs:
            begin = self._ends[-1] if self._ends else 0
            self._ends.append(begin + int(self._repeats(len(self._ends)).sum()))
        return self._ends[:num_epochs]

    def index_at(self, position: int) -> int:
        """Dataset index at global stream ``position``."""
        if not self._begin <= position < self._begin + self._order.size:
            while not self._ends or self._ends[-1] <= position:
                self.epoch_ends(len(self._ends) + 1)
            epoch = int(np.searchsorted(self._ends, position, side="right"))
            self._begin = self._ends[epoch - 1] if epoch else 0
            self._order = self._epoch_order(epoch)
        return int(self._order[position - self._begin])


#: Sampler registry: name -> class; ``build_sampler`` fills the engine inputs.
SAMPLERS: dict[str, type[StreamSampler]] = {
    "uniform": ResumableSampler,
    "rare_class": RareClassSampler,
    "repeat_factor": RepeatFactorSampler,
}


def sampler_options(name: str) -> dict[str, Any]:
    """The user options of sampler ``name`` and their defaults (engine inputs excluded).

    Raises:
        InputError: unknown name (the valid ones are listed).
    """
    if name not in SAMPLERS:
        raise InputError(f"unknown sampler {name!r}; valid names: {sorted(SAMPLERS)}")
    params = inspect.signature(SAMPLERS[name]).parameters.values()
    return {p.name: p.default for p in params if p.name not in ENGINE_INPUTS}


def build_sampler(
    name: str,
    size: int,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    start: int = 0,
    image_class_pixels: ClassPixels | None = None,
    **options: Any,
) -> StreamSampler:
    """Build sampler ``name`` of :data:`SAMPLERS` with the engine inputs and user ``options``.

    Args:
        name: "uniform", "rare_class" or "repeat_factor".
        size, seed, rank, world_size, start: as :class:`StreamSampler`.
        image_class_pixels: per-image ``{class id: pixels}``; needed by the long-tail samplers
            (``SAMPLERS[name].needs_class_pixels``), ignored by "uniform".
        **options: the sampler's own arguments (see :func:`sampler_options`).

    Returns:
        The sampler.

    Raises:
        InputError: unknown name or option (the accepted ones are listed), or bad values.
    """
    accepted = sampler_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(
            f"sampler {name!r} takes no option {unknown[0]!r}; accepted: {sorted(accepted)}"
        )
    cls = SAMPLERS[name]
    kwargs: dict[str, Any] = {"seed": seed, "rank": rank, "world_size": world_size}
    if cls.needs_class_pixels:
        kwargs["image_class_pixels"] = image_class_pixels
    return cls(size, start=start, **kwargs, **options)
