"""Contract of every baseline loss, through the real registry: names, signatures, ignore_index,
low-precision logits, empty batches, loss_weight, and combination with cross-entropy."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Literal, Union

import pydantic
import pytest
import torch

from aucseg.losses import LOSSES, CrossEntropyLoss, LovaszSoftmaxLoss, build_loss

COUNTS = [400.0, 200.0, 60.0, 25.0, 5.0]
NAMES = {
    "cross_entropy": "loss_ce",
    "focal": "loss_focal",
    "lovasz": "loss_lovasz",
    "dice": "loss_dice",
    "logit_adjusted": "loss_logit_adjusted",
    "blv": "loss_blv",
    "recall": "loss_recall",
}
OPTIONS: dict[str, list[dict[str, object]]] = {
    "cross_entropy": [{}, {"class_weight": "inverse", "class_counts": COUNTS}],
    "focal": [{}, {"gamma": 0.5, "alpha": [1.0, 2.0, 0.5, 1.0, 3.0]}],
    "lovasz": [{}, {"classes": "all", "per_image": True}],
    "dice": [{}, {"exponent": 1, "smooth": 0.5}],
    "logit_adjusted": [{"class_counts": COUNTS}, {"class_counts": COUNTS, "tau": 0.5}],
    "blv": [{"class_counts": COUNTS}],
    "recall": [{}, {"avg_non_ignore": True}],
}
CASES = [(name, kw) for name, options in OPTIONS.items() for kw in options]
IDS = [f"{name}-{i}" for name, options in OPTIONS.items() for i in range(len(options))]
PLAIN = (int, float, bool, str, type(None))


def make_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(2, 5, 6, 7, generator=gen)
    target = torch.randint(0, 5, (2, 6, 7), generator=gen)
    target[0, :2] = 255
    target[1, 3, 4:] = 255
    return logits, target


def run(loss: torch.nn.Module, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss with the same random stream every call (BLV draws noise in training mode)."""
    torch.manual_seed(1234)
    return loss(logits, target)


def test_every_baseline_is_registered_with_its_loss_name() -> None:
    assert set(LOSSES) == {"square_auc", "hinge_auc", "exp_auc", *NAMES}
    for name, loss_name in NAMES.items():
        loss = build_loss(name, 5, **OPTIONS[name][0])
        assert isinstance(loss, LOSSES[name])
        assert loss.loss_name == loss_name
        assert type(loss).supports_sync is False


def _is_plain(hint: object) -> bool:
    """True for int/float/bool/str/None, Literal, list[...] / tuple[...] and unions of those."""
    origin = typing.get_origin(hint)
    if origin is None:
        return hint in PLAIN
    if origin is Literal:
        return all(isinstance(v, PLAIN) for v in typing.get_args(hint))
    if origin in (Union, types.UnionType, list, tuple):
        return all(_is_plain(a) for a in typing.get_args(hint) if a is not Ellipsis)
    return False


@pytest.mark.parametrize("name", list(NAMES))
def test_constructor_options_are_plain_typed_with_defaults(name: str) -> None:
    cls = LOSSES[name]
    hints = typing.get_type_hints(cls.__init__)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert params[0].name == "num_classes" and params[0].default is inspect.Parameter.empty
    for param in params[1:]:
        assert param.default is not inspect.Parameter.empty, param.name
        assert _is_plain(hints[param.name]), (param.name, hints[param.name])
        # the config layer validates options against the signature with pydantic
        adapter = pydantic.TypeAdapter(hints[param.name])
        assert adapter.validate_python(param.default) == param.default


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_ignored_pixels_have_no_effect_and_no_gradient(name: str, kwargs: dict) -> None:
    logits, target = make_batch()
    loss_fn = build_loss(name, 5, **kwargs)
    x = logits.clone().requires_grad_()
    loss = run(loss_fn, x, target)
    loss.backward()
    ignored = (target == 255).unsqueeze(1).expand_as(logits)
    assert torch.all(x.grad[ignored] == 0)
    assert x.grad[~ignored].abs().sum() > 0
    changed = logits.masked_fill(ignored, 30.0)
    torch.testing.assert_close(run(loss_fn, changed, target), loss.detach())


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_custom_ignore_index(name: str, kwargs: dict) -> None:
    logits, target = make_batch()
    relabelled = torch.where(target == 255, -1, target)
    a = run(build_loss(name, 5, **kwargs), logits, target)
    b = run(build_loss(name, 5, ignore_index=-1, **kwargs), logits, relabelled)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_logits_are_computed_in_float32(
    name: str, kwargs: dict, dtype: torch.dtype
) -> None:
    logits, target = make_batch()
    loss_fn = build_loss(name, 5, **kwargs)
    low = logits.to(dtype).requires_grad_()
    loss = run(loss_fn, low, target)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    upcast = low.detach().float().requires_grad_()
    expected = run(loss_fn, upcast, target)
    torch.testing.assert_close(loss, expected)  # the same fp32 computation on the same values
    loss.backward()
    expected.backward()
    assert low.grad.dtype == dtype
    torch.testing.assert_close(low.grad.float(), upcast.grad, rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
@pytest.mark.parametrize("shape", [(0, 5, 4, 4), (2, 5, 0, 4), (2, 5, 4, 0)])
def test_empty_batch_gives_zero_loss_and_zero_gradient(
    name: str, kwargs: dict, shape: tuple[int, ...]
) -> None:
    x = torch.randn(shape, requires_grad=True)
    target = torch.zeros((shape[0], *shape[2:]), dtype=torch.long)
    loss = build_loss(name, 5, **kwargs)(x, target)
    assert loss.shape == () and loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert x.grad.shape == x.shape and torch.all(x.grad == 0)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_loss_weight_multiplies(name: str, kwargs: dict) -> None:
    logits, target = make_batch()
    one = run(build_loss(name, 5, **kwargs), logits, target)
    scaled = run(build_loss(name, 5, loss_weight=2.5, **kwargs), logits, target)
    torch.testing.assert_close(scaled, 2.5 * one)
    assert one.item() > 0


@pytest.mark.parametrize("name", list(NAMES))
def test_wrong_channel_count_is_rejected(name: str) -> None:
    logits, target = make_batch()
    with pytest.raises(ValueError, match="built for num_classes=5"):
        build_loss(name, 5, **OPTIONS[name][0])(logits[:, :4], target)


def test_lovasz_plus_cross_entropy_trains_together() -> None:
    logits, target = make_batch()
    lovasz, ce = LovaszSoftmaxLoss(5), CrossEntropyLoss(5, loss_weight=0.5)
    x = logits.clone().requires_grad_()
    total = lovasz(x, target) + ce(x, target)
    total.backward()
    separate = []
    for loss_fn in (lovasz, ce):
        y = logits.clone().requires_grad_()
        loss_fn(y, target).backward()
        separate.append(y.grad)
    torch.testing.assert_close(x.grad, separate[0] + separate[1])
    # a few steps of gradient descent on the logits lower both terms
    y = logits.clone().requires_grad_()
    opt = torch.optim.SGD([y], lr=20.0)
    before = (lovasz(y, target).item(), ce(y, target).item())
    for _ in range(20):
        opt.zero_grad()
        (lovasz(y, target) + ce(y, target)).backward()
        opt.step()
    assert lovasz(y, target).item() < before[0] and ce(y, target).item() < before[1]
