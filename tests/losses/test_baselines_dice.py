"""Soft Dice loss against a loop-based definition."""

from __future__ import annotations

import pytest
import torch

from aucseg.errors import InputError
from aucseg.losses import DiceLoss, dice_loss


def brute_force(
    logits: torch.Tensor, target: torch.Tensor, smooth: float, exponent: int
) -> torch.Tensor:
    """mean over images and classes of 1 - (2 sum p g + s) / (sum p^e + g^e + s), valid pixels."""
    probs = torch.softmax(logits, 1)
    b_size, num_classes = logits.shape[:2]
    total = logits.new_zeros(())
    for b in range(b_size):
        for c in range(num_classes):
            inter, denom = logits.new_zeros(()), logits.new_zeros(())
            for i in range(target.shape[1]):
                for j in range(target.shape[2]):
                    y = int(target[b, i, j])
                    if y == 255:
                        continue
                    p, g = probs[b, c, i, j], float(y == c)
                    inter = inter + p * g
                    denom = denom + p**exponent + g**exponent
            total = total + 1 - (2 * inter + smooth) / (denom + smooth)
    return total / (b_size * num_classes)


@pytest.mark.parametrize(("smooth", "exponent"), [(1.0, 2), (1.0, 1), (0.1, 3)])
def test_values_and_gradients_match_brute_force(smooth: float, exponent: int) -> None:
    gen = torch.Generator().manual_seed(2)
    logits = 2 * torch.randn(2, 4, 3, 4, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 3, (2, 3, 4), generator=gen)  # class 3 absent
    target[0, 1] = 255
    x = logits.clone().requires_grad_()
    y = logits.clone().requires_grad_()
    loss = DiceLoss(4, smooth=smooth, exponent=exponent)(x, target)
    expected = brute_force(y, target, smooth, exponent)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(x.grad, y.grad)


def test_perfect_prediction_is_near_zero_and_bounds() -> None:
    target = torch.randint(0, 3, (2, 8, 8))
    perfect = 40.0 * torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).double()
    assert dice_loss(perfect, target).item() < 1e-12
    loss = dice_loss(-perfect, target)  # every pixel wrong
    assert 0.5 < loss.item() <= 1.0


def test_bad_options() -> None:
    with pytest.raises(InputError, match="smooth must be > 0, got 0"):
        DiceLoss(3, smooth=0.0)
    with pytest.raises(InputError, match="exponent must be an int >= 1, got 0"):
        DiceLoss(3, exponent=0)
    with pytest.raises(InputError, match=r"exponent must be an int >= 1, got 1\.5"):
        dice_loss(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long), exponent=1.5)
