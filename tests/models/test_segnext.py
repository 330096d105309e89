"""SegNeXt against the official implementation: outputs, key layouts, parameter counts, NMF."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aucseg.models import (
    NMF2D,
    build_model,
    build_segnext,
    check_state_dict,
    load_checkpoint,
    set_nmf_generator,
)

OFFICIAL_PARAMS = {  # spec §5.4, counted on the official models
    ("segnext_tiny", 150): 4_263_414,
    ("segnext_tiny", 19): 4_229_747,
    ("segnext_small", 150): 13_932_886,
    ("segnext_small", 171): 13_938_283,
    ("segnext_base", 150): 27_636_310,
    ("segnext_base", 19): 27_569_107,
    ("segnext_large", 150): 48_926_550,
    ("segnext_large", 171): 48_948_075,
}
BACKBONE_PARAMS = {
    "segnext_tiny": 3_903_584,
    "segnext_small": 13_450_176,
    "segnext_base": 26_277_824,
    "segnext_large": 44_636_864,
}
LAYOUTS = {"tiny_c19": ("segnext_tiny", 19), "base_c150": ("segnext_base", 150)}
LAYOUTS["large_c150"] = ("segnext_large", 150)


def _meta_model(name: str, num_classes: int) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(name, num_classes)


@pytest.mark.parametrize(("name", "num_classes"), sorted(OFFICIAL_PARAMS))
def test_parameter_counts_equal_official(name: str, num_classes: int) -> None:
    model = _meta_model(name, num_classes)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[(name, num_classes)]
    assert sum(p.numel() for p in model.backbone.parameters()) == BACKBONE_PARAMS[name]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_official_key_layout_matches_exactly(reference_dir: Path, layout: str) -> None:
    entries = json.loads((reference_dir / f"segnext_{layout}_keys.json").read_text())
    name, num_classes = LAYOUTS[layout]
    model = _meta_model(name, num_classes)
    state = {k: torch.empty(shape, device="meta") for k, shape in entries}
    assert check_state_dict(model, state) == ([], [], [])
    assert list(model.state_dict()) == [k for k, _ in entries]  # same order too


def test_official_layout_file_loads_strict(reference_dir: Path, tmp_path: Path) -> None:
    entries = json.loads((reference_dir / "segnext_tiny_c19_keys.json").read_text())
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.rand(shape, generator=gen) for k, shape in entries}
    state = {k: v.long() if k.endswith("num_batches_tracked") else v for k, v in state.items()}
    torch.save({"meta": {"iter": 160000}, "state_dict": state, "optimizer": {}}, tmp_path / "c.pth")
    model = build_segnext("tiny", num_classes=19)
    report = load_checkpoint(model, tmp_path / "c.pth")
    assert (report.kind, report.target, report.loaded) == ("mmseg", "model", len(entries))
    loaded = model.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)


def test_outputs_match_official_checkpoint(reference_dir: Path) -> None:
    """Backbone features and stride-8 logits of the official code, to 1e-4."""
    io = np.load(reference_dir / "segnext_tiny_c19_io.npz")
    model = build_segnext("tiny", num_classes=19).eval()
    load_checkpoint(model, reference_dir / "segnext_tiny_c19_official_format.pth")
    with torch.no_grad():
        feats = model.backbone(torch.from_numpy(io["input"]))
        assert len(feats) == 4
        for i, feat in enumerate(feats):
            torch.testing.assert_close(feat, torch.from_numpy(io[f"feat{i}"]), atol=1e-4, rtol=0)
        torch.manual_seed(1234)
        logits = model.decode_head(feats)
    torch.testing.assert_close(logits, torch.from_numpy(io["logits"]), atol=1e-4, rtol=0)
    # The whole segmentor upsamples those logits to the input size.
    with torch.no_grad():
        torch.manual_seed(1234)
        full = model(torch.from_numpy(io["input"]))
    expected = F.interpolate(logits, size=(96, 128), mode="bilinear", align_corners=False)
    torch.testing.assert_close(full, expected, atol=1e-5, rtol=0)


def _official_nmf(x: torch.Tensor, bases: torch.Tensor, steps: int) -> torch.Tensor:
    """The official multiplicative updates written out literally (S = 1, inv_t = 1)."""
    b, c, h, w = x.shape
    x = x.view(b, c, h * w)
    coef = F.softmax(torch.bmm(x.transpose(1, 2), bases), dim=-1)
    for _ in range(steps + 1):  # `steps` local steps, then compute_coef
        num = torch.bmm(x.transpose(1, 2), bases)
        den = coef.bmm(bases.transpose(1, 2).bmm(bases))
        coef = coef * num / (den + 1e-6)
        if _ == steps:
            break
        num = torch.bmm(x, coef)
        den = bases.bmm(coef.transpose(1, 2).bmm(coef))
        bases = bases * num / (den + 1e-6)
    return torch.bmm(bases, coef.transpose(1, 2)).view(b, c, h, w)


@pytest.mark.parametrize("training", [True, False])
def test_nmf_matches_literal_updates_and_draw_order(training: bool) -> None:
    x = torch.rand(2, 8, 5, 6)
    nmf = NMF2D(rank=4).train(training)
    torch.manual_seed(7)
    out = nmf(x)
    torch.manual_seed(7)
    bases = F.normalize(torch.rand((2, 8, 4)), dim=1)
    expected = _official_nmf(x, bases, 6 if training else 7)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)


def test_nmf_gradients_flow_through_all_steps() -> None:
    x = torch.rand(1, 8, 4, 4, dtype=torch.float64, requires_grad=True)
    nmf = NMF2D(rank=3).eval()
    gen = torch.Generator()

    def fn(inp: torch.Tensor) -> torch.Tensor:
        gen.manual_seed(3)
        nmf.generator = gen
        return nmf(inp)

    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5)


def test_nmf_generator_makes_eval_repeatable() -> None:
    model = build_segnext("tiny", num_classes=3).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a, b = model(x), model(x)
        assert not torch.allclose(a, b)  # random bases: official behaviour
        gen = torch.Generator()
        set_nmf_generator(model, gen)
        gen.manual_seed(0)
        c = model(x)
        gen.manual_seed(0)
        d = model(x)
    torch.testing.assert_close(c, d, rtol=0, atol=0)
    set_nmf_generator(model, None)
    assert all(m.generator is None for m in model.modules() if isinstance(m, NMF2D))
    with pytest.raises(TypeError, match=r"torch\.Generator"):
        set_nmf_generator(model, 0)  # type: ignore[arg-type]


def test_nmf_reduced_precision_runs_in_float32() -> None:
    x = torch.rand(1, 8, 4, 4)
    nmf = NMF2D(rank=4).eval()
    torch.manual_seed(0)
    ref = nmf(x)
    torch.manual_seed(0)
    out = nmf(x.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.05)
    # Exactly the float32 decomposition of the bf16 values (same bases), cast back to bf16,
    # also under autocast.
    torch.manual_seed(0)
    expected = nmf(x.bfloat16().float()).bfloat16()
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_out = nmf(x.bfloat16())
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(autocast_out, expected, rtol=0, atol=0)


def test_head_hyperparameters_follow_official_configs() -> None:
    for variant, channels, rank in [("tiny", 256, 16), ("small", 256, 16), ("base", 512, 64)]:
        with torch.device("meta"):
            head = build_segnext(variant, num_classes=7).decode_head
        assert head.conv_seg.in_channels == channels
        assert head.hamburger.ham.rank == rank
        assert (head.hamburger.ham.train_steps, head.hamburger.ham.eval_steps) == (6, 7)
        assert head.squeeze.gn.num_groups == 32


def test_drop_path_default_and_override() -> None:
    with torch.device("meta"):
        large = build_model("segnext_large", 150)
        tiny = build_model("segnext_tiny", 19, drop_path_rate=0.0)
    assert large.backbone.block4[-1].drop_path.p == pytest.approx(0.3)
    assert large.backbone.block1[1].drop_path.p == pytest.approx(0.3 / 37)
    assert all(isinstance(m.drop_path, torch.nn.Identity) for m in tiny.backbone.block4)


def test_sync_batchnorm_conversion_keeps_keys() -> None:
    model = build_segnext("tiny", num_classes=19)
    keys = list(model.state_dict())
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert list(synced.state_dict()) == keys
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules())


def test_set_nmf_generator_is_a_noop_without_nmf() -> None:
    with torch.device("meta"):
        model = build_model("deeplabv3plus_r50", 3)
    set_nmf_generator(model, torch.Generator())
    assert not any(isinstance(m, NMF2D) for m in model.modules())


def test_nmf_generator_on_another_device_is_reported() -> None:
    nmf = NMF2D(rank=2)
    nmf.generator = torch.Generator()  # CPU generator, input on another device
    with pytest.raises(ValueError, match="set_nmf_generator"):
        nmf(torch.rand(1, 4, 2, 2, device="meta"))
