"""Balanced Logit Variation: the deterministic scale, the train/eval switch, noise statistics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from aucseg.errors import InputError
from aucseg.losses import BLVLoss, blv_loss
from aucseg.losses.blv import blv_noise, blv_scale

COUNTS = [1000.0, 100.0, 10.0, 1.0]


def make_batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(11)
    logits = torch.randn(2, 4, 5, 6, generator=gen)
    target = torch.randint(0, 4, (2, 5, 6), generator=gen)
    target[0, 0] = 255
    return logits, target


def mmseg_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target, ignore_index=255, reduction="sum") / target.numel()


def test_scale_is_normalised_negative_log_frequency() -> None:
    total = sum(COUNTS)
    raw = [math.log(total / n) for n in COUNTS]
    expected = torch.tensor([r / max(raw) for r in raw], dtype=torch.float64)
    torch.testing.assert_close(blv_scale(torch.tensor(COUNTS, dtype=torch.float64)), expected)
    zero = blv_scale(torch.tensor([5.0, 0.0, 5.0], dtype=torch.float64))
    torch.testing.assert_close(zero, torch.ones(3, dtype=torch.float64))  # log 2 each: all 1
    single = blv_scale(torch.tensor([7.0], dtype=torch.float64))
    torch.testing.assert_close(single, torch.zeros(1, dtype=torch.float64))


def test_eval_mode_and_sigma_zero_are_cross_entropy() -> None:
    logits, target = make_batch()
    loss_fn = BLVLoss(4, class_counts=COUNTS).eval()
    torch.testing.assert_close(loss_fn(logits, target), mmseg_ce(logits, target))
    torch.testing.assert_close(
        blv_loss(logits, target, COUNTS, sigma=0.0), mmseg_ce(logits, target)
    )
    torch.manual_seed(0)
    assert not torch.isclose(loss_fn.train()(logits, target), mmseg_ce(logits, target))


def test_training_loss_is_cross_entropy_of_the_perturbed_logits() -> None:
    logits, target = make_batch()
    scale = blv_scale(torch.tensor(COUNTS, dtype=torch.float64))
    noise = blv_noise(logits, scale, 4.0, torch.Generator().manual_seed(3))
    x = logits.clone().requires_grad_()
    y = logits.clone().requires_grad_()
    loss = blv_loss(x, target, COUNTS, generator=torch.Generator().manual_seed(3))
    expected = mmseg_ce(y + noise, target)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    expected.backward()
    torch.testing.assert_close(x.grad, y.grad)
    # the module draws from the global generator
    torch.manual_seed(3)
    module_loss = BLVLoss(4, class_counts=COUNTS)(logits, target)
    torch.manual_seed(3)
    torch.testing.assert_close(module_loss, blv_loss(logits, target, COUNTS))


@pytest.mark.parametrize("sigma", [0.5, 4.0])
def test_noise_statistics(sigma: float) -> None:
    scale = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    like = torch.zeros(4, 3, 250, 250)
    noise = blv_noise(like, scale, sigma, torch.Generator().manual_seed(0)).double()
    assert noise.dtype == torch.float64 and (noise >= 0).all()
    unit = noise / scale.view(1, 3, 1, 1)  # |clip(eps, -1, 1)| per class
    assert unit.max() <= 1.0 + 1e-6
    # E min(|eps|, 1) = int_0^1 P(|eps| > t) dt and P(|eps| >= 1), eps ~ N(0, sigma^2)
    tail = 2 * (1 - 0.5 * (1 + math.erf(1 / (sigma * math.sqrt(2)))))
    steps = 20_000
    mean = sum(math.erfc((k + 0.5) / steps / (sigma * math.sqrt(2))) for k in range(steps)) / steps
    for c in range(3):
        values = unit[:, c].flatten()
        assert abs(values.mean().item() - mean) < 0.005
        assert abs((values > 1 - 1e-6).double().mean().item() - tail) < 0.005
    stds = noise.std(dim=(0, 2, 3))  # standard deviation proportional to the scale
    torch.testing.assert_close(stds / stds[2], scale / scale[2], rtol=0.02, atol=0.0)


def test_bad_options() -> None:
    with pytest.raises(InputError, match=r"blv needs class_counts.*data\.class_groups"):
        BLVLoss(4)
    with pytest.raises(InputError, match=r"sigma must be finite and >= 0\.0, got -1"):
        BLVLoss(4, sigma=-1.0, class_counts=COUNTS)
