"""Training samplers: resumable, rank-sliced streams; long-tail draw frequencies; the loader."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from aucseg.data import (
    SAMPLERS,
    RareClassSampler,
    RepeatFactorSampler,
    ResumableSampler,
    build_sampler,
    make_train_loader,
    sample_seed,
)
from aucseg.data.samplers import rare_class_probabilities, repeat_factors, sampler_options
from aucseg.errors import InputError

# per image: {class: pixels}. Class 0 everywhere (common), 1 in two images, 2 in one, 3 tiny.
PIXELS = [
    {0: 900, 1: 100},
    {0: 1000},
    {0: 700, 2: 300},
    {0: 950, 1: 40, 3: 10},
    {0: 1000},
]
OPTIONS = {
    "uniform": {},
    "rare_class": {"temperature": 0.5, "min_pixels": 20},
    "repeat_factor": {"threshold": 0.5},
}


def _take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def _build(name, **kw):
    return build_sampler(name, len(PIXELS), image_class_pixels=PIXELS, **OPTIONS[name], **kw)


def _tolerance(p: float, n: int) -> float:
    """5 standard deviations of an empirical frequency of n draws with probability p."""
    return 5 * math.sqrt(p * (1 - p) / n) + 1e-9


def test_uniform_resumes_mid_stream_and_shards():
    full = ResumableSampler(5, seed=3)
    stream = _take(full, 12)
    assert sorted(i for i, _ in stream[:5]) == list(range(5))  # each epoch is a permutation
    assert sorted(i for i, _ in stream[5:10]) == list(range(5))
    assert _take(ResumableSampler(5, seed=3, start=7), 5) == stream[7:12]
    assert _take(ResumableSampler(5, seed=3, rank=0, world_size=2), 3) == stream[0:6:2]
    assert _take(ResumableSampler(5, seed=3, rank=1, world_size=2), 3) == stream[1:6:2]
    assert [i for i, _ in _take(ResumableSampler(4, shuffle=False), 6)] == [0, 1, 2, 3, 0, 1]
    assert [s for _, s in stream] == [sample_seed(3, p) for p in range(12)]
    assert _take(ResumableSampler(5, seed=4), 12) != stream


def test_sample_seed_separates_streams_and_positions():
    seeds = {sample_seed(0, p, s) for p in range(50) for s in range(3)}
    assert len(seeds) == 150 and all(0 <= s < 2**32 for s in seeds)
    assert sample_seed(7, 3, 1) == sample_seed(7, 3, 1)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_resumes_and_slices_by_rank(name):
    stream = _take(_build(name, seed=11), 300)
    assert _take(_build(name, seed=11, start=137), 100) == stream[137:237]
    for rank in range(3):
        assert _take(_build(name, seed=11, rank=rank, world_size=3), 40) == stream[rank:120:3]
    # rank 1 of 3 resumed after 31 samples continues at global position 31 * 3 + 1
    assert _take(_build(name, seed=11, rank=1, world_size=3, start=31), 20) == stream[94:154:3]
    assert _take(_build(name, seed=12), 300) != stream


def test_rare_class_probabilities_by_hand():
    classes, probs, images = rare_class_probabilities(PIXELS, temperature=0.5, min_pixels=20)
    total = 900 + 100 + 1000 + 700 + 300 + 950 + 40 + 10 + 1000
    freq = {0: 4550 / total, 1: 140 / total, 2: 300 / total}  # class 3: no image with >= 20
    weights = {c: math.exp((1 - f) / 0.5) for c, f in freq.items()}
    assert classes.tolist() == [0, 1, 2]
    np.testing.assert_allclose(probs, [weights[c] / sum(weights.values()) for c in (0, 1, 2)])
    assert [m.tolist() for m in images] == [[0, 1, 2, 3, 4], [0, 3], [2]]
    _, _, strict = rare_class_probabilities(PIXELS, temperature=0.5, min_pixels=100)
    assert [m.tolist() for m in strict] == [[0, 1, 2, 3, 4], [0], [2]]  # 40 < 100 drops image 3


def test_rare_class_draw_frequencies_match_definition():
    temperature, min_pixels, n = 0.05, 20, 20000
    sampler = RareClassSampler(5, 0, image_class_pixels=PIXELS, temperature=temperature,
                               min_pixels=min_pixels)  # fmt: skip
    # expected P(image) from the definition: sum over classes c of P(c) / |images with c|
    total = sum(sum(d.values()) for d in PIXELS)
    pixels = {c: sum(d.get(c, 0) for d in PIXELS) for c in range(4)}
    members = {c: [i for i, d in enumerate(PIXELS) if d.get(c, 0) >= min_pixels] for c in range(4)}
    weights = {c: math.exp((1 - pixels[c] / total) / temperature) for c in members if members[c]}
    expected = np.zeros(5)
    for c, w in weights.items():
        expected[members[c]] += w / sum(weights.values()) / len(members[c])
    counts = np.bincount([i for i, _ in _take(sampler, n)], minlength=5)
    for i in range(5):
        assert abs(counts[i] / n - expected[i]) <= _tolerance(expected[i], n), (i, counts)
    assert expected[1] + expected[4] < 1e-6  # images of the common class alone: ~never


def test_repeat_factors_by_hand():
    # f_0 = 1, f_1 = 2/5, f_2 = 1/5, f_3 = 1/5; t = 0.5
    r = {0: 1.0, 1: max(1, math.sqrt(0.5 / 0.4)), 2: math.sqrt(2.5), 3: math.sqrt(2.5)}
    expected = [max(r[0], r[1]), r[0], max(r[0], r[2]), max(r[0], r[1], r[3]), r[0]]
    np.testing.assert_allclose(repeat_factors(PIXELS, 0.5), expected)
    assert repeat_factors(PIXELS, 0.01).tolist() == [1.0] * 5  # every class is frequent enough
    assert repeat_factors([{}, {0: 0}, {1: 5}], 1.0).tolist() == [1.0, 1.0, math.sqrt(3)]


def test_repeat_factor_draw_frequencies_match_definition():
    n = 20000
    sampler = RepeatFactorSampler(5, 0, image_class_pixels=PIXELS, threshold=0.5)
    factors = repeat_factors(PIXELS, 0.5)
    expected = factors / factors.sum()
    counts = np.bincount([i for i, _ in _take(sampler, n)], minlength=5)
    # a partial last epoch (at most ceil(sum r) positions) shifts the counts by at most that
    slack = math.ceil(factors.sum()) / n
    for i in range(5):
        assert abs(counts[i] / n - expected[i]) <= _tolerance(expected[i], n) + slack, counts


def test_repeat_factor_epochs_round_stochastically():
    factors = repeat_factors(PIXELS, 0.5)  # fractional factors: 1.118, 1.581
    sampler = RepeatFactorSampler(5, 3, image_class_pixels=PIXELS, threshold=0.5)
    stream = [i for i, _ in _take(sampler, 4000)]
    begin, lengths = 0, []
    for end in sampler.epoch_ends(30):
        counts = np.bincount(stream[begin:end], minlength=5)
        assert ((counts == np.floor(factors)) | (counts == np.ceil(factors))).all()
        lengths.append(end - begin)
        begin = end
    assert len(set(lengths)) > 1  # the rounding differs between epochs


def test_loader_batches_do_not_depend_on_workers_and_resume():
    class Noisy(Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return torch.tensor([float(i), float(np.random.rand()), torch.rand(()).item()])

    state = np.random.get_state()[1].copy()
    serial = list(itertools.islice(make_train_loader(Noisy(), 3, seed=5), 4))
    assert np.array_equal(np.random.get_state()[1], state)  # the global RNG is left alone
    parallel = list(itertools.islice(make_train_loader(Noisy(), 3, seed=5, num_workers=2), 4))
    resumed = list(itertools.islice(make_train_loader(Noisy(), 3, consumed_batches=2, seed=5), 2))
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(serial[2:], resumed, strict=True))
    assert sorted(torch.cat(serial)[:7, 0].tolist()) == list(range(7))


def test_loader_with_a_long_tail_sampler():
    class Index(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return i

    options = OPTIONS["rare_class"]
    loader = make_train_loader(
        Index(), 4, seed=2, sampler="rare_class", sampler_options=options, image_class_pixels=PIXELS
    )
    expected = [i for i, _ in _take(_build("rare_class", seed=2), 8)]
    assert torch.cat(list(itertools.islice(loader, 2))).tolist() == expected


def test_sampler_options_and_errors():
    assert sampler_options("uniform") == {"shuffle": True}
    assert sampler_options("rare_class") == {"temperature": 0.01, "min_pixels": 3000}
    assert sampler_options("repeat_factor") == {"threshold": 0.001}
    with pytest.raises(InputError, match=r"unknown sampler 'rcs'.*rare_class"):
        build_sampler("rcs", 5)
    with pytest.raises(InputError, match=r"no option 'temp'.*\['min_pixels', 'temperature'\]"):
        build_sampler("rare_class", 5, image_class_pixels=PIXELS, temp=0.1)
    with pytest.raises(InputError, match=r"image_class_pixels.*aucseg stats"):
        build_sampler("repeat_factor", 5)
    with pytest.raises(InputError, match=r"of 5 images for a dataset of 6"):
        build_sampler("rare_class", 6, image_class_pixels=PIXELS)
    with pytest.raises(InputError, match=r"no image holds >= 5000 pixels.*lower min_pixels"):
        build_sampler("rare_class", 5, image_class_pixels=PIXELS, min_pixels=5000)
    with pytest.raises(InputError, match="threshold must be > 0"):
        build_sampler("repeat_factor", 5, image_class_pixels=PIXELS, threshold=0.0)
    with pytest.raises(InputError, match="temperature must be > 0"):
        build_sampler("rare_class", 5, image_class_pixels=PIXELS, temperature=-1.0)
    with pytest.raises(InputError, match="dataset is empty"):
        ResumableSampler(0)
    with pytest.raises(InputError, match="rank 2 of world size 2"):
        ResumableSampler(3, rank=2, world_size=2)
    with pytest.raises(InputError, match="batch_size"):
        make_train_loader([1, 2], 0)
