"""Recall loss against a brute-force definition with explicitly counted recalls."""

from __future__ import annotations

import pytest
import torch

from aucseg.losses import RecallLoss, recall_loss
from aucseg.losses.recall import batch_miss_rate


def brute_force(logits: torch.Tensor, target: torch.Tensor, avg_non_ignore: bool) -> torch.Tensor:
    """sum over valid pixels of (1 - recall_y) * CE, recall counted pixel by pixel."""
    num_classes = logits.shape[1]
    pixels = [
        (b, i, j)
        for b in range(target.shape[0])
        for i in range(target.shape[1])
        for j in range(target.shape[2])
        if int(target[b, i, j]) != 255
    ]
    hits, totals = [0] * num_classes, [0] * num_classes
    for b, i, j in pixels:
        y = int(target[b, i, j])
        totals[y] += 1
        hits[y] += int(int(logits[b, :, i, j].argmax()) == y)
    miss = [1 - hits[c] / totals[c] if totals[c] else 0.0 for c in range(num_classes)]
    total = logits.new_zeros(())
    for b, i, j in pixels:
        y = int(target[b, i, j])
        z = logits[b, :, i, j]
        total = total + miss[y] * (torch.logsumexp(z, 0) - z[y])
    return total / (len(pixels) if avg_non_ignore else target.numel())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("avg_non_ignore", [False, True])
def test_values_and_gradients_match_brute_force(seed: int, avg_non_ignore: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 4, 4, 5, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 3, (2, 4, 5), generator=gen)  # class 3 absent
    target[0, 0] = 255
    x = logits.clone().requires_grad_()
    y = logits.clone().requires_grad_()
    loss = RecallLoss(4, avg_non_ignore=avg_non_ignore)(x, target)
    expected = brute_force(y, target, avg_non_ignore)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(x.grad, y.grad)


def test_miss_rate_by_hand() -> None:
    # class 0: 3 pixels, 1 missed; class 1: 1 pixel, hit; class 2 absent; one ignored pixel
    predicted = torch.tensor([[0, 0, 1, 1, 2]])
    logits = torch.nn.functional.one_hot(predicted, 3).permute(0, 2, 1).reshape(1, 3, 1, 5)
    target = torch.tensor([[[0, 0, 0, 1, 255]]])
    rate = batch_miss_rate(logits.float(), target, 255)
    torch.testing.assert_close(rate, torch.tensor([1 / 3, 0.0, 0.0]))


def test_perfect_recall_gives_zero_loss() -> None:
    target = torch.randint(0, 3, (2, 4, 4))
    logits = 5.0 * torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert recall_loss(logits, target).item() == 0.0
