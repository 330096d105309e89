"""AUC loss modules: edge cases, options, the sync capability, dtypes and memory design."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from aucseg.errors import InputError
from aucseg.losses import (
    ExpAUCLoss,
    HingeAUCLoss,
    SquareAUCLoss,
    auc_loss,
    build_loss,
    exp_auc_loss,
    hinge_auc_loss,
    square_auc_loss,
)

AUC_NAMES = ["square_auc", "hinge_auc", "exp_auc"]
# Every AUC loss and form: (registry name, constructor options).
VARIANTS = [
    ("square_auc", {}),
    ("exp_auc", {}),
    ("hinge_auc", {"form": "pairwise"}),
    ("hinge_auc", {"form": "official"}),
]


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


@pytest.mark.parametrize(("name", "options"), VARIANTS)
@pytest.mark.parametrize("transform", ["ovo", "ova"])
@pytest.mark.parametrize("shape", [(0, 5, 6, 7), (2, 5, 0, 7), (2, 5, 6, 0)])
@pytest.mark.parametrize(
    ("dtype", "loss_dtype"),
    [(torch.float32, torch.float32), (torch.float16, torch.float32), (torch.float64,) * 2],
)
def test_empty_batch_gives_zero_loss_with_zero_gradient(
    name: str,
    options: dict[str, str],
    transform: str,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    loss_dtype: torch.dtype,
) -> None:
    x = torch.randn(shape).to(dtype).requires_grad_()
    target = torch.zeros((shape[0], *shape[2:]), dtype=torch.long)
    loss = build_loss(name, 5, transform=transform, **options)(x, target)
    assert loss.shape == () and loss.dtype == loss_dtype and loss.device == x.device
    assert loss.requires_grad and loss.grad_fn is not None
    assert loss.item() == 0.0
    loss.backward()
    assert x.grad is not None and x.grad.shape == x.shape and x.grad.dtype == dtype


@pytest.mark.parametrize("name", AUC_NAMES)
def test_binary_segmentation_works(name: str) -> None:
    logits, target = make_batch(num_classes=2)
    x = logits.requires_grad_()
    loss = build_loss(name, 2)(x, target)
    loss.backward()
    assert loss.item() > 0 and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [SquareAUCLoss, HingeAUCLoss, ExpAUCLoss])
@pytest.mark.parametrize("num_classes", [1, 0, -3])
def test_fewer_than_two_classes_is_input_error(cls: type, num_classes: int) -> None:
    with pytest.raises(InputError, match=f"num_classes must be >= 2, got {num_classes}"):
        cls(num_classes)


def test_bad_options_are_rejected() -> None:
    with pytest.raises(InputError, match=r"transform must be 'ovo'.*got 'ovr'"):
        SquareAUCLoss(3, transform="ovr")
    with pytest.raises(InputError, match=r"gamma .* > 0, got -1"):
        SquareAUCLoss(3, gamma=-1.0)
    with pytest.raises(InputError, match="form must be one of"):
        HingeAUCLoss(3, form="linear")
    with pytest.raises(TypeError, match="num_classes must be an int"):
        SquareAUCLoss(3.0)
    with pytest.raises(InputError, match="loss_weight must be finite"):
        ExpAUCLoss(3, loss_weight=float("nan"))
    with pytest.raises(TypeError, match=r"ignore_index must be an int, got float 255\.0"):
        SquareAUCLoss(3, ignore_index=255.0)
    with pytest.raises(TypeError, match="sync must be True or False, got int 1"):
        ExpAUCLoss(3, sync=1)


def test_only_the_hinge_takes_form() -> None:
    with pytest.raises(TypeError, match="form"):
        SquareAUCLoss(3, form="official")
    with pytest.raises(TypeError, match="form"):
        ExpAUCLoss(3, form="official")
    assert HingeAUCLoss(3).form == "pairwise"
    assert "form='official'" in repr(HingeAUCLoss(3, form="official"))


@pytest.mark.parametrize(
    ("loss", "supported"),
    [
        (SquareAUCLoss(3), True),
        (ExpAUCLoss(3), True),
        (HingeAUCLoss(3, form="official"), True),
        (HingeAUCLoss(3, form="pairwise"), False),
    ],
)
def test_supports_sync_flag(loss: torch.nn.Module, supported: bool) -> None:
    assert loss.supports_sync is supported
    assert loss.sync is False


@pytest.mark.parametrize(
    "make",
    [lambda: SquareAUCLoss(5), lambda: ExpAUCLoss(5), lambda: HingeAUCLoss(5, form="official")],
)
def test_sync_set_after_construction(make: Callable[[], torch.nn.Module]) -> None:
    """``loss.sync = True`` switches the mode on; without a process group it is the local loss."""
    logits, target = make_batch()
    loss = make()
    local = loss(logits, target)
    loss.sync = True
    assert loss.sync is True and "sync=True" in repr(loss)
    torch.testing.assert_close(loss(logits, target), local)
    loss.sync = False
    assert loss.sync is False


def test_pairwise_hinge_cannot_sync() -> None:
    message = r"sync=True is not supported by HingeAUCLoss: with form='pairwise'.*form='official'"
    with pytest.raises(InputError, match=message):
        HingeAUCLoss(3, sync=True)
    loss = HingeAUCLoss(3)
    with pytest.raises(InputError, match=message):
        loss.sync = True
    assert loss.sync is False
    synced = HingeAUCLoss(3, sync=True, form="official")  # exact from per-class sums: allowed
    with pytest.raises(InputError, match="with form='pairwise'"):
        synced.form = "pairwise"
    assert synced.form == "official" and synced.sync is True
    synced.sync = False
    synced.form = "pairwise"
    assert synced.supports_sync is False
    with pytest.raises(InputError, match="the hinge surrogate: with form='pairwise'"):
        auc_loss(*make_batch(), "hinge", sync=True)


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


def test_functional_shorthands_equal_the_modules() -> None:
    logits, target = make_batch()
    target[0, 0] = 255
    pairs = [
        (square_auc_loss(logits, target, gamma=0.5), SquareAUCLoss(5, gamma=0.5)),
        (exp_auc_loss(logits, target, transform="ova"), ExpAUCLoss(5, transform="ova")),
        (hinge_auc_loss(logits, target), HingeAUCLoss(5)),
        (hinge_auc_loss(logits, target, form="official"), HingeAUCLoss(5, form="official")),
    ]
    for value, module in pairs:
        torch.testing.assert_close(value, module(logits, target))
    assert square_auc_loss(logits, target) != hinge_auc_loss(logits, target)


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


def test_functional_rejects_single_channel() -> None:
    with pytest.raises(InputError, match="at least 2 classes"):
        auc_loss(torch.randn(1, 1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
