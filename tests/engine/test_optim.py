"""AdamW with the official SegNeXt/AUCSeg parameter groups, on the real SegNeXt-T."""

from __future__ import annotations

import pytest
import torch

from aucseg.engine.optim import (
    build_adamw,
    build_param_groups,
    fused_supported,
    official_custom_keys,
    param_multipliers,
)
from aucseg.models import build_model

from .tiny import TinyNet


@pytest.fixture(scope="module")
def segnext():
    return build_model("segnext_tiny", 4)


def _groups_by_name(model):
    out = {}
    for group in build_param_groups(model, lr=1.0, weight_decay=0.5):
        for name in group["names"]:
            out[name] = (group["lr"], group["weight_decay"], group["group"])
    return out


def test_official_param_groups_follow_mmcv_matching(segnext):
    groups = _groups_by_name(segnext)
    assert len(groups) == sum(1 for _ in segnext.parameters())
    for name, (lr, decay, group) in groups.items():
        if name.startswith("decode_head."):  # 'head' precedes 'norm': lr x10, full decay
            assert (lr, decay, group) == (10.0, 0.5, "head"), name
        elif "norm" in name:  # backbone norms (block norm1/norm2, stage norms): no decay
            assert (lr, decay, group) == (1.0, 0.0, "backbone_no_decay"), name
        else:
            assert (lr, decay, group) == (1.0, 0.5, "backbone"), name
    # the stem BatchNorm, layer scales and biases keep decay, as in the official runs
    for name in (
        "backbone.patch_embed1.proj.1.weight",
        "backbone.block1.0.layer_scale_1",
        "backbone.block1.0.mlp.fc1.bias",
    ):
        assert groups[name][:2] == (1.0, 0.5), name
    assert groups["backbone.block1.0.norm1.weight"][:2] == (1.0, 0.0)


def test_key_order_is_length_then_alphabetical():
    keys = {"ab": (2.0, 1.0), "b": (3.0, 1.0), "aa": (4.0, 1.0)}
    assert param_multipliers("x.aab", keys) == (4.0, 1.0)  # 'aa' < 'ab' alphabetically, same len
    assert param_multipliers("x.b", keys) == (3.0, 1.0)
    assert param_multipliers("x.c", keys) == (1.0, 1.0)
    assert official_custom_keys(5.0, 0.1)["head"] == (5.0, 1.0)
    assert official_custom_keys(5.0, 0.1)["norm"] == (1.0, 0.1)


def test_frozen_params_are_skipped_and_adamw_built():
    model = TinyNet()
    model.backbone.conv.weight.requires_grad_(False)
    opt = build_adamw(model, lr=6e-5, weight_decay=0.01, betas=(0.8, 0.9))
    assert isinstance(opt, torch.optim.AdamW)
    assert sum(len(g["params"]) for g in opt.param_groups) == 5  # of 6
    assert sorted({g["lr"] for g in opt.param_groups}) == pytest.approx([6e-5, 6e-4])
    assert opt.defaults["betas"] == (0.8, 0.9)
    assert opt.defaults["fused"] is fused_supported(torch.device("cpu"))


def test_fused_adamw_matches_the_foreach_kernel():
    torch.manual_seed(0)
    a, b = TinyNet(), TinyNet()
    b.load_state_dict(a.state_dict())
    fused, plain = build_adamw(a, lr=1e-2, fused=True), build_adamw(b, lr=1e-2, fused=False)
    x = torch.randn(2, 3, 8, 8)
    for _ in range(3):
        for model, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got 0"):
        build_adamw(TinyNet(), lr=0.0)
    with pytest.raises(ValueError, match="got inf"):
        build_adamw(TinyNet(), lr=float("inf"))
    frozen = TinyNet().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_adamw(frozen)
