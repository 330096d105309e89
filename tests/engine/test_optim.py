import pytest
import torch

from aucseg.engine.optim import build_adamw, build_param_groups, param_multipliers

from .standins import TinySegmentor


def _groups_by_name(model):
    out = {}
    for group in build_param_groups(model, lr=1.0, weight_decay=0.5):
        for name in group["names"]:
            out[name] = (group["lr"], group["weight_decay"])
    return out


def test_official_param_groups_follow_mmcv_matching():
    groups = _groups_by_name(TinySegmentor())
    # every decode_head param: lr x10, full decay (the 'head' key precedes 'norm')
    for name in ("decode_head.squeeze.weight", "decode_head.norm.weight", "decode_head.norm.bias"):
        assert groups[name] == (10.0, 0.5), name
    # backbone norms: no decay
    for name in ("backbone.block1.0.norm1.weight", "backbone.norm1.bias"):
        assert groups[name] == (1.0, 0.0), name
    # stem BN, layer_scale and conv biases keep decay
    for name in (
        "backbone.patch_embed1.proj.1.weight",
        "backbone.block1.0.layer_scale_1",
        "backbone.block1.0.conv.bias",
    ):
        assert groups[name] == (1.0, 0.5), name
    assert len(groups) == sum(1 for _ in TinySegmentor().parameters())


def test_key_order_is_length_then_alphabetical():
    keys = {"ab": (2.0, 1.0), "b": (3.0, 1.0), "aa": (4.0, 1.0)}
    assert param_multipliers("x.aab", keys) == (4.0, 1.0)  # 'aa' < 'ab' alphabetically, same len
    assert param_multipliers("x.b", keys) == (3.0, 1.0)
    assert param_multipliers("x.c", keys) == (1.0, 1.0)


def test_frozen_params_are_skipped_and_adamw_built():
    model = TinySegmentor()
    model.backbone.patch_embed1.proj[0].weight.requires_grad_(False)
    opt = build_adamw(model, lr=6e-5, weight_decay=0.01)
    assert isinstance(opt, torch.optim.AdamW)
    n = sum(len(g["params"]) for g in opt.param_groups)
    assert n == sum(1 for p in model.parameters() if p.requires_grad)
    lrs = sorted({g["lr"] for g in opt.param_groups})
    assert lrs == pytest.approx([6e-5, 6e-4])


def test_bad_lr():
    with pytest.raises(ValueError, match="lr must be > 0, got 0"):
        build_adamw(TinySegmentor(), lr=0.0)
