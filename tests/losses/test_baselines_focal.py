"""Softmax focal loss against a per-pixel brute-force definition."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aucseg.errors import InputError
from aucseg.losses import FocalLoss, focal_loss


def make_batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    logits = 3 * torch.randn(2, 4, 3, 5, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 3, 5), generator=gen)
    target[1, 0, :3] = 255
    return logits, target


def brute_force(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float,
    alpha: list[float] | float | None,
    avg_non_ignore: bool,
) -> torch.Tensor:
    """sum over valid pixels of -alpha_t (1 - p_t)^gamma log p_t, / all or / valid pixels."""
    total, valid = logits.new_zeros(()), 0
    for b in range(target.shape[0]):
        for i in range(target.shape[1]):
            for j in range(target.shape[2]):
                y = int(target[b, i, j])
                if y == 255:
                    continue
                p_t = torch.softmax(logits[b, :, i, j], 0)[y]
                a = 1.0 if alpha is None else alpha[y] if isinstance(alpha, list) else alpha
                total = total - a * (1 - p_t) ** gamma * torch.log(p_t)
                valid += 1
    return total / (valid if avg_non_ignore else target.numel())


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.5])
@pytest.mark.parametrize("alpha", [None, 0.25, [0.5, 1.0, 2.0, 4.0]])
@pytest.mark.parametrize("avg_non_ignore", [False, True])
def test_values_and_gradients_match_brute_force(
    gamma: float, alpha: list[float] | float | None, avg_non_ignore: bool
) -> None:
    logits, target = make_batch()
    x = logits.clone().requires_grad_()
    y = logits.clone().requires_grad_()
    loss_fn = FocalLoss(4, gamma=gamma, alpha=alpha, avg_non_ignore=avg_non_ignore)
    loss = loss_fn(x, target)
    expected = brute_force(y, target, gamma, alpha, avg_non_ignore)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(x.grad, y.grad)


def test_gamma_zero_is_cross_entropy() -> None:
    logits, target = make_batch()
    summed = F.cross_entropy(logits, target, ignore_index=255, reduction="sum")
    torch.testing.assert_close(focal_loss(logits, target, gamma=0.0), summed / target.numel())


def test_confident_pixels_keep_finite_gradients() -> None:
    # p_t rounds to 1 in fp32: (1 - p_t)^gamma with gamma < 1 has an infinite slope at 0
    logits = torch.tensor([[60.0, 0.0], [0.0, 0.0]]).T.reshape(1, 2, 1, 2).requires_grad_()
    target = torch.tensor([[[0, 1]]])
    loss = focal_loss(logits, target, gamma=0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_bad_options() -> None:
    with pytest.raises(InputError, match=r"gamma must be finite and >= 0\.0, got -1"):
        FocalLoss(3, gamma=-1.0)
    with pytest.raises(InputError, match="alpha has 2 entries but num_classes=3"):
        FocalLoss(3, alpha=[1.0, 2.0])
    with pytest.raises(InputError, match=r"alpha must be finite and >= 0\.0"):
        FocalLoss(3, alpha=-0.5)
    with pytest.raises(InputError, match="gamma must be finite"):
        focal_loss(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long), gamma=-2)
