"""Defined behaviour at the edges, input validation, dtypes, memory design, CE and registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aucseg.losses import (
    LOSSES,
    CrossEntropyLoss,
    ExpAUCLoss,
    HingeAUCLoss,
    SquareAUCLoss,
    auc_loss,
    build_loss,
    validate_inputs,
)

AUC_NAMES = ["square_auc", "hinge_auc", "exp_auc"]
ALL_NAMES = [*AUC_NAMES, "cross_entropy"]


def make_batch(num_classes: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, num_classes, 6, 7, generator=gen)
    target = torch.randint(0, num_classes, (2, 6, 7), generator=gen)
    return logits, target


@pytest.mark.parametrize("name", AUC_NAMES)
@pytest.mark.parametrize("transform", ["ovo", "ova"])
@pytest.mark.parametrize("case", ["one_class", "all_ignored"])
def test_degenerate_batch_gives_zero_loss_with_zero_gradient(
    name: str, transform: str, case: str
) -> None:
    logits, target = make_batch()
    target = torch.full_like(target, 3 if case == "one_class" else 255)
    if case == "one_class":
        target[0, 0, 0] = 255
    x = logits.requires_grad_()
    loss = build_loss(name, 5, transform=transform)(x, target)
    assert loss.item() == 0.0
    assert loss.requires_grad
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


@pytest.mark.parametrize("name", AUC_NAMES)
def test_binary_segmentation_works(name: str) -> None:
    logits, target = make_batch(num_classes=2)
    x = logits.requires_grad_()
    loss = build_loss(name, 2)(x, target)
    loss.backward()
    assert loss.item() > 0 and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [SquareAUCLoss, HingeAUCLoss, ExpAUCLoss])
@pytest.mark.parametrize("num_classes", [1, 0, -3])
def test_fewer_than_two_classes_is_value_error(cls: type, num_classes: int) -> None:
    with pytest.raises(ValueError, match=f"num_classes must be >= 2, got {num_classes}"):
        cls(num_classes)


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"transform must be 'ovo'.*got 'ovr'"):
        SquareAUCLoss(3, transform="ovr")
    with pytest.raises(ValueError, match=r"gamma .* > 0, got -1"):
        SquareAUCLoss(3, gamma=-1.0)
    with pytest.raises(ValueError, match="form must be one of"):
        HingeAUCLoss(3, form="linear")
    with pytest.raises(TypeError, match="num_classes must be an int"):
        SquareAUCLoss(3.0)
    with pytest.raises(ValueError, match="loss_weight must be finite"):
        ExpAUCLoss(3, loss_weight=float("nan"))
    for cls in (SquareAUCLoss, CrossEntropyLoss):
        with pytest.raises(TypeError, match=r"ignore_index must be an int, got float 255\.0"):
            cls(3, ignore_index=255.0)


def test_pairwise_hinge_cannot_sync() -> None:
    with pytest.raises(ValueError, match="sync=True cannot be exact for the pairwise hinge"):
        HingeAUCLoss(3, sync=True)
    HingeAUCLoss(3, sync=True, form="official")  # exact from per-class sums: allowed


@pytest.mark.parametrize("name", ALL_NAMES)
def test_input_validation(name: str) -> None:
    loss_fn = build_loss(name, 5)
    logits, target = make_batch()
    with pytest.raises(ValueError, match=r"logits \(2, 5, 6, 7\) and target \(2, 6\)"):
        loss_fn(logits, target[:, :, 0])
    with pytest.raises(ValueError, match=r"logits \(2, 5, 6, 7\) and target \(1, 6, 7\)"):
        loss_fn(logits, target[:1])
    with pytest.raises(ValueError, match=r"spatial size mismatch: logits \(3, 4\).*F.interpolate"):
        loss_fn(logits[:, :, :3, :4], target)
    with pytest.raises(ValueError, match="6 channels but the loss was built for num_classes=5"):
        loss_fn(torch.randn(2, 6, 6, 7), target)
    with pytest.raises(TypeError, match=r"logits must be floating point.*torch.int64"):
        loss_fn(logits.long(), target)
    with pytest.raises(TypeError, match="target must hold integer class labels"):
        loss_fn(logits, target.float())
    bad = target.clone()
    bad[0, 0, 0], bad[1, 2, 3], bad[1, 1, 1] = 7, -1, 255
    with pytest.raises(ValueError, match=r"labels \[-1, 7\] outside \[0, 5\).*ignore_index=255"):
        loss_fn(logits, bad)
    for value, what in ((float("nan"), "1 NaN and 0 infinite"), (float("inf"), "0 NaN and 1 inf")):
        broken = logits.clone()
        broken[1, 2, 3, 4] = value
        with pytest.raises(ValueError, match=what):
            loss_fn(broken, target)


def test_validate_inputs_accepts_good_input_and_custom_ignore() -> None:
    logits, target = make_batch()
    target[0, 0, 0] = -100
    validate_inputs(logits, target, 5, ignore_index=-100)
    with pytest.raises(ValueError, match=r"labels \[-100\]"):
        validate_inputs(logits, target, 5, ignore_index=255)


@pytest.mark.parametrize("name", AUC_NAMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_logits(name: str, dtype: torch.dtype) -> None:
    logits, target = make_batch()
    loss_fn = build_loss(name, 5, transform="ovo")
    ref_in = logits.clone().requires_grad_()
    ref = loss_fn(ref_in, target)
    ref.backward()
    low_in = logits.to(dtype).requires_grad_()
    low = loss_fn(low_in, target)
    low.backward()
    assert low.dtype == torch.float32
    assert low_in.grad.dtype == dtype
    torch.testing.assert_close(low, ref, rtol=2e-2, atol=1e-4)
    scale = float(ref_in.grad.abs().max())
    torch.testing.assert_close(low_in.grad.float(), ref_in.grad, rtol=5e-2, atol=2e-2 * scale)


def test_loss_weight_scales_value_and_gradient() -> None:
    logits, target = make_batch()
    base_in, scaled_in = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    base = SquareAUCLoss(5)(base_in, target)
    scaled = SquareAUCLoss(5, loss_weight=4.0)(scaled_in, target)
    base.backward()
    scaled.backward()
    assert base.item() > 0
    torch.testing.assert_close(scaled, 4 * base)
    torch.testing.assert_close(scaled_in.grad, 4 * base_in.grad)


def test_sync_without_process_group_is_local_loss() -> None:
    logits, target = make_batch()
    for cls in (SquareAUCLoss, ExpAUCLoss):
        torch.testing.assert_close(cls(5, sync=True)(logits, target), cls(5)(logits, target))


def test_ignored_pixels_do_not_matter() -> None:
    logits, target = make_batch()
    target[:, :2] = 255
    x = logits.clone().requires_grad_()
    loss = SquareAUCLoss(5)(x, target)
    loss.backward()
    assert torch.equal(x.grad[:, :, :2], torch.zeros_like(x.grad[:, :, :2]))
    changed = logits.clone()
    changed[:, :, :2] = 50.0
    torch.testing.assert_close(SquareAUCLoss(5)(changed, target), loss.detach())


def test_non_contiguous_logits() -> None:
    logits, target = make_batch()
    channels_last = logits.contiguous(memory_format=torch.channels_last).requires_grad_()
    plain = logits.clone().requires_grad_()
    a = SquareAUCLoss(5)(channels_last, target)
    b = SquareAUCLoss(5)(plain, target)
    a.backward()
    b.backward()
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(channels_last.grad, plain.grad)


def test_square_loss_saves_no_more_than_the_logits_for_backward() -> None:
    """Memory design: nothing of size (M, C) is saved besides the logits themselves."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 40, 32, 32, generator=gen, requires_grad=True)
    target = torch.randint(0, 40, (2, 32, 32), generator=gen)
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        SquareAUCLoss(40)(logits, target)
    extra = sum(v for k, v in saved.items() if k != logits.untyped_storage().data_ptr())
    # Only O(M) per-pixel tensors (labels, weights, label-column scores): a few dozen bytes per
    # pixel, while one (M, C) fp32 tensor would be 4 * 40 = 160 bytes per pixel.
    assert extra <= 48 * target.numel()


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


def test_registry_and_build_loss() -> None:
    assert set(ALL_NAMES) <= set(LOSSES)  # the baselines: tests/losses/test_baselines_contract.py
    names = {name: build_loss(name, 4).loss_name for name in ALL_NAMES}
    assert names == {
        "square_auc": "loss_square_auc",
        "hinge_auc": "loss_hinge_auc",
        "exp_auc": "loss_exp_auc",
        "cross_entropy": "loss_ce",
    }
    loss = build_loss("square_auc", 150, loss_weight=4.0, gamma=0.5)
    assert isinstance(loss, SquareAUCLoss) and loss.loss_weight == 4.0 and loss.gamma == 0.5
    assert build_loss("hinge_auc", 3).form == "pairwise"
    with pytest.raises(ValueError, match=r"unknown loss 'focall'.*cross_entropy, dice, exp_auc"):
        build_loss("focall", 4)
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['form'\]"):
        build_loss("square_auc", 4, form="official")


def test_functional_rejects_single_channel() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        auc_loss(torch.randn(1, 1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_integer_label_dtypes_agree(name: str) -> None:
    logits, target = make_batch()
    target[0, 0] = 255
    loss_fn = build_loss(name, 5)
    expected = loss_fn(logits, target)
    for dtype in (torch.uint8, torch.int32):
        torch.testing.assert_close(loss_fn(logits, target.to(dtype)), expected)
