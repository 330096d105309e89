"""Lovász-softmax against a loop-based transcription of the published algorithm."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aucseg.errors import InputError
from aucseg.losses import LovaszSoftmaxLoss, lovasz_softmax_loss
from aucseg.losses.lovasz import lovasz_increments

IGNORE = 255


def jaccard_set_loss(mispredicted: set[int], foreground: set[int]) -> float:
    """Delta_J(M) = |M| / |F ∪ M| (Berman et al., Eq. 6); 0 for the empty set."""
    return len(mispredicted) / len(foreground | mispredicted) if mispredicted else 0.0


def class_loss(probs: torch.Tensor, labels: list[int], c: int) -> torch.Tensor:
    """Lovász extension of Delta_J for class c: errors sorted decreasingly, set increments."""
    errors = [abs(float(y == c) - probs[i, c]) for i, y in enumerate(labels)]
    order = sorted(range(len(labels)), key=lambda i: -float(errors[i].detach()))
    foreground = {i for i, y in enumerate(labels) if y == c}
    total, prefix, previous = probs.new_zeros(()), set(), 0.0
    for i in order:
        prefix.add(i)
        current = jaccard_set_loss(prefix, foreground)
        total = total + errors[i] * (current - previous)
        previous = current
    return total


def flat_loss(probs: torch.Tensor, labels: list[int], classes: str) -> torch.Tensor:
    """Reference ``lovasz_softmax_flat``: mean over present (or all) classes, 0 if none."""
    if not labels:
        return probs.sum() * 0.0
    chosen = [c for c in range(probs.shape[1]) if classes == "all" or c in labels]
    if not chosen:
        return probs.sum() * 0.0
    return sum(class_loss(probs, labels, c) for c in chosen) / len(chosen)


def brute_force(
    logits: torch.Tensor, target: torch.Tensor, classes: str, per_image: bool
) -> torch.Tensor:
    """Reference ``lovasz_softmax(softmax(logits), target, classes, per_image, ignore)``."""
    probs = torch.softmax(logits, 1)

    def pixels(b_range: range) -> tuple[torch.Tensor, list[int]]:
        rows, labels = [], []
        for b in b_range:
            for i in range(target.shape[1]):
                for j in range(target.shape[2]):
                    if int(target[b, i, j]) != IGNORE:
                        rows.append(probs[b, :, i, j])
                        labels.append(int(target[b, i, j]))
        empty = probs.movedim(1, -1).reshape(-1, probs.shape[1])[:0]  # keeps the graph
        stacked = torch.stack(rows) if rows else empty
        return stacked, labels

    if not per_image:
        return flat_loss(*pixels(range(target.shape[0])), classes)
    losses = [flat_loss(*pixels(range(b, b + 1)), classes) for b in range(target.shape[0])]
    return sum(losses) / len(losses)


@st.composite
def batches(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    b, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(b, c, h, w, generator=gen, dtype=torch.float64)
    target = torch.randint(0, c, (b, h, w), generator=gen)
    ignored = torch.rand(b, h, w, generator=gen) < draw(st.sampled_from([0.0, 0.3, 1.0]))
    return logits, target.masked_fill(ignored, IGNORE)


@settings(max_examples=60, deadline=None)
@given(batch=batches(), classes=st.sampled_from(["present", "all"]), per_image=st.booleans())
def test_values_and_gradients_match_the_published_algorithm(
    batch: tuple[torch.Tensor, torch.Tensor], classes: str, per_image: bool
) -> None:
    logits, target = batch
    x = logits.clone().requires_grad_()
    y = logits.clone().requires_grad_()
    loss = LovaszSoftmaxLoss(logits.shape[1], classes=classes, per_image=per_image)(x, target)
    expected = brute_force(y, target, classes, per_image)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(x.grad, y.grad)


def test_known_value_for_a_hand_example() -> None:
    # one class-0 pixel scored 0.8 and one class-1 pixel scored 0.3 for class 0 (two classes)
    probs = torch.tensor([[0.8, 0.2], [0.3, 0.7]], dtype=torch.float64)
    logits = probs.log().T.reshape(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    # class 0: errors 0.2 (fg), 0.3 (bg) -> sorted [0.3 bg, 0.2 fg]: Delta = 1/2, then 2/2
    # -> 0.3 * 0.5 + 0.2 * 0.5 = 0.25; class 1: errors 0.2 (bg), 0.3 (fg) -> sorted
    # [0.3 fg, 0.2 bg]: Delta = 1/1, then 2/2 -> 0.3 * 1 + 0.2 * 0 = 0.3; mean 0.275
    expected = torch.tensor(0.275, dtype=torch.float64)
    torch.testing.assert_close(lovasz_softmax_loss(logits, target), expected)


def test_increments_telescope_and_are_accurate_for_large_unions() -> None:
    gen = torch.Generator().manual_seed(0)
    fg = torch.rand(3, 200_000, generator=gen) < torch.tensor([[0.5], [0.01], [0.0]])
    fast = lovasz_increments(fg, torch.float32)
    # float64 differencing of 1 - |F \ S_k| / |F ∪ S_k|, the reference's formula
    f = fg.double()
    gts = f.sum(1, keepdim=True)
    jaccard = 1 - (gts - f.cumsum(1)) / (gts + (1 - f).cumsum(1))
    exact = torch.diff(jaccard, dim=1, prepend=torch.zeros(3, 1, dtype=torch.float64))
    torch.testing.assert_close(fast.double(), exact, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(fast.double().sum(1), torch.ones(3, dtype=torch.float64))


def test_present_and_all_differ_by_absent_classes() -> None:
    logits = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    target = torch.zeros(1, 3, 3, dtype=torch.long)
    present = lovasz_softmax_loss(logits, target, classes="present")
    every = lovasz_softmax_loss(logits, target, classes="all")
    # for an absent class the loss is its largest probability (the first increment is 1)
    probs = torch.softmax(logits, 1)
    absent = probs[0, 1:].reshape(3, -1).max(1).values
    torch.testing.assert_close(every, (present + absent.sum()) / 4)


def test_bad_classes_option() -> None:
    with pytest.raises(InputError, match="classes must be one of 'present', 'all'"):
        LovaszSoftmaxLoss(3, classes="some")
    with pytest.raises(InputError, match="got 'x'"):
        lovasz_softmax_loss(
            torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long), classes="x"
        )
