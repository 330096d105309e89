"""Logit-adjusted cross-entropy: brute force, Balanced Softmax and pairwise-margin identities."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from aucseg.errors import InputError
from aucseg.losses import LogitAdjustedLoss, build_loss, logit_adjusted_loss

COUNTS = [500.0, 120.0, 30.0, 8.0]


def make_batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    logits = 2 * torch.randn(2, 4, 3, 4, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 4, (2, 3, 4), generator=gen)
    target[1, 2] = 255
    return logits, target


def per_pixel_sum(logits: torch.Tensor, target: torch.Tensor, term) -> torch.Tensor:
    """sum over valid pixels of term(z, y) / all pixels (mmseg averaging)."""
    total = logits.new_zeros(())
    for b in range(target.shape[0]):
        for i in range(target.shape[1]):
            for j in range(target.shape[2]):
                y = int(target[b, i, j])
                if y != 255:
                    total = total + term(logits[b, :, i, j], y)
    return total / target.numel()


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 2.0])
def test_values_and_gradients_match_the_pairwise_margin_form(tau: float) -> None:
    # Menon et al. Eq. 11: log(1 + sum_{c != y} (pi_c / pi_y)^tau exp(z_c - z_y))
    logits, target = make_batch()
    prior = [n / sum(COUNTS) for n in COUNTS]

    def term(z: torch.Tensor, y: int) -> torch.Tensor:
        others = [(prior[c] / prior[y]) ** tau * torch.exp(z[c] - z[y]) for c in range(4) if c != y]
        return torch.log(1 + sum(others))

    x = logits.clone().requires_grad_()
    y = logits.clone().requires_grad_()
    loss = LogitAdjustedLoss(4, tau=tau, class_counts=COUNTS)(x, target)
    expected = per_pixel_sum(y, target, term)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(x.grad, y.grad)


def test_tau_one_is_balanced_softmax() -> None:
    # Ren et al. 2020: p_y = n_y exp(z_y) / sum_c n_c exp(z_c)
    logits, target = make_batch()

    def term(z: torch.Tensor, y: int) -> torch.Tensor:
        weighted = [COUNTS[c] * torch.exp(z[c]) for c in range(4)]
        return -torch.log(weighted[y] / sum(weighted))

    loss = build_loss("logit_adjusted", 4, class_counts=COUNTS)(logits, target)
    torch.testing.assert_close(loss, per_pixel_sum(logits, target, term))


def test_tau_zero_is_cross_entropy() -> None:
    logits, target = make_batch()
    summed = F.cross_entropy(logits, target, ignore_index=255, reduction="sum")
    loss = logit_adjusted_loss(logits, target, COUNTS, tau=0.0)
    torch.testing.assert_close(loss, summed / target.numel())


def test_adjustment_is_tau_log_prior_and_zero_counts_are_finite() -> None:
    loss_fn = LogitAdjustedLoss(3, tau=0.7, class_counts=[60.0, 0.0, 40.0])
    expected = [0.7 * math.log(v) for v in (60 / 140, 40 / 140, 40 / 140)]
    torch.testing.assert_close(loss_fn.adjustment, torch.tensor(expected, dtype=torch.float64))


def test_counts_are_required() -> None:
    with pytest.raises(InputError, match=r"logit_adjusted needs class_counts.*data\.class_groups"):
        LogitAdjustedLoss(4)
    with pytest.raises(InputError, match="tau must be finite"):
        LogitAdjustedLoss(4, tau=float("inf"), class_counts=COUNTS)
