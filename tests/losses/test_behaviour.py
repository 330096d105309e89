"""Contract of every registered loss (input errors, label dtypes) and cross-entropy averaging."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aucseg.errors import InputError
from aucseg.losses import LOSSES, CrossEntropyLoss, build_loss, loss_options

ALL_NAMES = sorted(LOSSES)


def make_loss(name: str, num_classes: int = 5) -> torch.nn.Module:
    """``build_loss`` with class counts for the losses that need them (as the engine does)."""
    kwargs = {}
    if "class_counts" in loss_options(name):
        kwargs["class_counts"] = [float(2**c) for c in range(num_classes)]
    return build_loss(name, num_classes, **kwargs).eval()  # eval: no BLV noise


def make_batch(num_classes: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, num_classes, 6, 7, generator=gen)
    target = torch.randint(0, num_classes, (2, 6, 7), generator=gen)
    return logits, target


@pytest.mark.parametrize("name", ALL_NAMES)
def test_input_validation(name: str) -> None:
    loss_fn = make_loss(name)
    logits, target = make_batch()
    with pytest.raises(InputError, match=r"logits \(2, 5, 6, 7\) and target \(2, 6\)"):
        loss_fn(logits, target[:, :, 0])
    with pytest.raises(InputError, match=r"logits \(2, 5, 6, 7\) and target \(1, 6, 7\)"):
        loss_fn(logits, target[:1])
    with pytest.raises(InputError, match=r"spatial size mismatch: logits \(3, 4\).*F.interpolate"):
        loss_fn(logits[:, :, :3, :4], target)
    with pytest.raises(InputError, match="6 channels but the loss was built for num_classes=5"):
        loss_fn(torch.randn(2, 6, 6, 7), target)
    with pytest.raises(TypeError, match=r"logits must be floating point.*torch.int64"):
        loss_fn(logits.long(), target)
    with pytest.raises(TypeError, match="target must hold integer class labels"):
        loss_fn(logits, target.float())
    bad = target.clone()
    bad[0, 0, 0], bad[1, 2, 3], bad[1, 1, 1] = 7, -1, 255
    with pytest.raises(InputError, match=r"labels \[-1, 7\] outside \[0, 5\).*ignore_index=255"):
        loss_fn(logits, bad)
    for value, what in ((float("nan"), "1 NaN and 0 infinite"), (float("inf"), "0 NaN and 1 inf")):
        broken = logits.clone()
        broken[1, 2, 3, 4] = value
        with pytest.raises(InputError, match=what):
            loss_fn(broken, target)
    with pytest.raises(TypeError, match=r"pass logits\['out'\] \(torchvision"):
        loss_fn({"out": logits, "aux": logits}, target)


def test_cross_entropy_matches_mmseg_averaging() -> None:
    logits, target = make_batch()
    target[0, :3] = 255
    summed = F.cross_entropy(logits, target, ignore_index=255, reduction="sum")
    torch.testing.assert_close(CrossEntropyLoss(5)(logits, target), summed / target.numel())
    torch.testing.assert_close(
        CrossEntropyLoss(5, avg_non_ignore=True)(logits, target),
        F.cross_entropy(logits, target, ignore_index=255),
    )
    torch.testing.assert_close(
        CrossEntropyLoss(5, loss_weight=2.0)(logits, target), 2 * summed / target.numel()
    )


def test_cross_entropy_all_ignored_and_half() -> None:
    logits, target = make_batch()
    x = logits.clone().requires_grad_()
    loss = CrossEntropyLoss(5, avg_non_ignore=True)(x, torch.full_like(target, 255))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))
    half = CrossEntropyLoss(5)(logits.half(), target)
    torch.testing.assert_close(half, CrossEntropyLoss(5)(logits, target), rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_integer_label_dtypes_agree(name: str) -> None:
    logits, target = make_batch()
    target[0, 0] = 255
    loss_fn = make_loss(name)
    expected = loss_fn(logits, target)
    for dtype in (torch.uint8, torch.int32):
        torch.testing.assert_close(loss_fn(logits, target.to(dtype)), expected)
