"""Class-weighted cross-entropy and the weight derivations from pixel counts."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
import torch.nn.functional as F

from aucseg.errors import InputError
from aucseg.losses import CrossEntropyLoss, build_loss, class_weights_from_counts

COUNTS = [600.0, 300.0, 60.0, 30.0, 10.0]


def make_batch(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 5, 4, 5, generator=gen, dtype=dtype)
    target = torch.randint(0, 5, (2, 4, 5), generator=gen)
    target[0, 0] = 255
    return logits, target


def brute_force_ce(
    logits: torch.Tensor, target: torch.Tensor, weight: list[float], avg_non_ignore: bool
) -> torch.Tensor:
    """sum over valid pixels of w[y] * -log softmax(z)[y], / all or / valid pixels (mmseg)."""
    total, valid = logits.new_zeros(()), 0
    for b in range(target.shape[0]):
        for i in range(target.shape[1]):
            for j in range(target.shape[2]):
                y = int(target[b, i, j])
                if y == 255:
                    continue
                z = logits[b, :, i, j]
                total = total - weight[y] * (z[y] - torch.logsumexp(z, 0))
                valid += 1
    return total / (valid if avg_non_ignore else target.numel())


@pytest.mark.parametrize("avg_non_ignore", [False, True])
@pytest.mark.parametrize("method", ["inverse", "median", "enet", "effective"])
def test_weighted_cross_entropy_matches_brute_force(method: str, avg_non_ignore: bool) -> None:
    logits, target = make_batch()
    weight = class_weights_from_counts(COUNTS, method, beta=0.99).tolist()
    loss_fn = CrossEntropyLoss(
        5, class_weight=method, class_counts=COUNTS, beta=0.99, avg_non_ignore=avg_non_ignore
    )
    x = logits.clone().requires_grad_()
    y = logits.clone().requires_grad_()
    loss = loss_fn(x, target)
    expected = brute_force_ce(y, target, weight, avg_non_ignore)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(x.grad, y.grad)


def test_weights_divide_by_pixels_not_by_the_sum_of_weights() -> None:
    logits, target = make_batch(torch.float32)
    weight = [1.0, 2.0, 0.5, 3.0, 0.0]
    loss = CrossEntropyLoss(5, class_weight=weight)(logits, target)
    w = torch.tensor(weight)
    summed = F.cross_entropy(logits, target, weight=w, ignore_index=255, reduction="sum")
    torch.testing.assert_close(loss, summed / target.numel())
    torch_mean = F.cross_entropy(logits, target, weight=w, ignore_index=255)
    assert not torch.isclose(loss, torch_mean)


def test_unweighted_behaviour_is_unchanged() -> None:
    logits, target = make_batch(torch.float32)
    loss = build_loss("cross_entropy", 5, class_counts=COUNTS)(logits, target)  # counts unused
    summed = F.cross_entropy(logits, target, ignore_index=255, reduction="sum")
    torch.testing.assert_close(loss, summed / target.numel())
    assert CrossEntropyLoss(5).class_weight is None


def test_weight_formulas_by_hand() -> None:
    counts = [70.0, 20.0, 10.0]
    f = [0.7, 0.2, 0.1]
    inverse = class_weights_from_counts(counts, "inverse")
    torch.testing.assert_close(inverse, torch.tensor([1 / (3 * v) for v in f]))
    torch.testing.assert_close((torch.tensor(f) * inverse).sum(), torch.tensor(1.0))
    median = class_weights_from_counts(counts, "median")
    torch.testing.assert_close(median, torch.tensor([0.2 / v for v in f]))
    enet = class_weights_from_counts(counts, "enet")
    torch.testing.assert_close(enet, torch.tensor([1 / math.log(1.02 + v) for v in f]))
    beta = 0.9
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    effective = class_weights_from_counts(counts, "effective", beta=beta)
    torch.testing.assert_close(effective, torch.tensor([3 * r / sum(raw) for r in raw]))


def test_median_of_an_even_number_of_classes() -> None:
    counts = [40.0, 30.0, 20.0, 10.0]
    f = [c / 100 for c in counts]
    median = class_weights_from_counts(counts, "median")
    torch.testing.assert_close(median, torch.tensor([statistics.median(f) / v for v in f]))


def test_effective_number_is_accurate_for_beta_close_to_one() -> None:
    counts = [1e9, 1e7, 1e5]
    beta = 1 - 1e-7
    raw = [(1 - beta) / -math.expm1(n * math.log(beta)) for n in counts]
    expected = torch.tensor([3 * r / sum(raw) for r in raw])
    torch.testing.assert_close(class_weights_from_counts(counts, "effective", beta=beta), expected)
    # the default beta saturates on pixel counts: nearly uniform weights
    default = class_weights_from_counts(counts, "effective")
    torch.testing.assert_close(default, torch.ones(3))


@pytest.mark.parametrize("method", ["inverse", "median", "enet", "effective"])
def test_zero_count_class_gets_the_largest_weight(method: str) -> None:
    counts = [50.0, 0.0, 30.0, 20.0]
    weights = class_weights_from_counts(counts, method, beta=0.9)
    assert torch.isfinite(weights).all() and (weights > 0).all()
    assert weights[1] == weights.max() == weights[3]  # as the rarest seen class
    positive = class_weights_from_counts([50.0, 30.0, 20.0], method, beta=0.9)
    torch.testing.assert_close(weights[[0, 2, 3]], positive)  # other weights unchanged


def test_method_without_counts_asks_for_class_groups() -> None:
    with pytest.raises(InputError, match=r"class_weight='inverse'.*data\.class_groups"):
        CrossEntropyLoss(5, class_weight="inverse")


def test_bad_weight_options_are_input_errors() -> None:
    with pytest.raises(InputError, match="class_weight must be one of"):
        CrossEntropyLoss(5, class_weight="balanced", class_counts=COUNTS)
    with pytest.raises(InputError, match="class_counts has 3 entries but num_classes=5"):
        CrossEntropyLoss(5, class_weight="enet", class_counts=[1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="class_weight has 2 entries"):
        CrossEntropyLoss(5, class_weight=[1.0, 2.0])
    with pytest.raises(InputError, match=r"holds \[-1\.0\]"):
        CrossEntropyLoss(5, class_weight=[1.0, -1.0, 1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="all zero"):
        CrossEntropyLoss(5, class_weight="median", class_counts=[0.0] * 5)
    with pytest.raises(InputError, match=r"beta must be in \[0, 1\), got 1\.0"):
        CrossEntropyLoss(5, class_weight="effective", class_counts=COUNTS, beta=1.0)
    with pytest.raises(TypeError, match="class_weight must be a list of numbers"):
        CrossEntropyLoss(5, class_weight=[1.0, "a", 1.0, 1.0, 1.0])


def test_weights_follow_the_module_to_a_dtype() -> None:
    loss_fn = CrossEntropyLoss(5, class_weight="inverse", class_counts=COUNTS).double()
    assert loss_fn.class_weight.dtype == torch.float64
    assert "class_weight" not in loss_fn.state_dict()  # derived, not checkpointed
    logits, target = make_batch()
    assert loss_fn(logits, target).dtype == torch.float64
