"""Contract every registered model honours: shapes, finite logits, gradients, builder errors."""

from __future__ import annotations

import pytest
import torch

from aucseg.errors import InputError
from aucseg.models import EncoderDecoder, build_model, build_segnext, list_models, model_options

# Real numbers on the smaller models; every built-in model (B, L and R101 included) is checked
# structurally on the meta device below, which costs no compute. The ``huggingface`` model needs
# a saved model (tests/models/test_huggingface.py).
COMPUTED = ["segnext_tiny", "segnext_small", "deeplabv3plus_r50"]
BUILT_IN = [
    n for n in list_models() if all(p.default is not p.empty for p in model_options(n).values())
]


@pytest.mark.parametrize("name", COMPUTED)
def test_forward_backward_contract(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=5).train()
    assert isinstance(model, EncoderDecoder)
    assert model.num_classes == 5
    images = torch.randn(2, 3, 64, 80)
    logits = model(images)
    assert logits.shape == (2, 5, 64, 80)
    assert torch.isfinite(logits).all()
    logits.logsumexp(dim=1).mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert no_grad == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    params = list(model.parameters())
    assert sum(bool(p.grad.abs().sum() > 0) for p in params) > 0.9 * len(params)


def test_every_built_in_model_is_checked() -> None:
    assert BUILT_IN == [
        "segnext_tiny",
        "segnext_small",
        "segnext_base",
        "segnext_large",
        "deeplabv3plus_r50",
        "deeplabv3plus_r101",
    ]


@pytest.mark.parametrize("name", BUILT_IN)
def test_structural_contract_on_meta_device(name: str) -> None:
    """Shapes and gradient flow of every registered model at 512x512, without computing."""
    with torch.device("meta"):
        model = build_model(name, num_classes=7).train()
        images = torch.empty(2, 3, 512, 512)
        feats = model.backbone(images)
        logits = model(images)
    assert [f.shape[1] for f in feats] == list(model.backbone.out_channels)
    assert [f.shape[2] for f in feats][:2] == [128, 64]
    assert logits.shape == (2, 7, 512, 512)
    logits.logsumexp(dim=1).mean().backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None, pname
        assert param.grad.shape == param.shape


@pytest.mark.parametrize("name", ["segnext_tiny", "deeplabv3plus_r50"])
def test_eval_odd_sizes_and_channels_last(name: str) -> None:
    model = build_model(name, num_classes=3).eval()
    images = torch.randn(1, 3, 45, 71)
    with torch.no_grad():
        torch.manual_seed(0)
        ref = model(images)
        torch.manual_seed(0)
        out = model.to(memory_format=torch.channels_last)(
            images.contiguous(memory_format=torch.channels_last)
        )
    assert ref.shape == (1, 3, 45, 71)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_segnext_head_output_is_stride_8() -> None:
    model = build_segnext("small", num_classes=4).eval()
    with torch.no_grad():
        feats = model.backbone(torch.randn(1, 3, 64, 96))
        assert [tuple(f.shape[2:]) for f in feats] == [(16, 24), (8, 12), (4, 6), (2, 3)]
        assert model.decode_head(feats).shape == (1, 4, 8, 12)


def test_resnet_backbone_matches_torchvision_layout() -> None:
    with torch.device("meta"):
        r50 = build_model("deeplabv3plus_r50", 2).backbone
        r101 = build_model("deeplabv3plus_r101", 2).backbone
    # torchvision resnet50 / resnet101 have 25,557,032 / 44,549,160 parameters with the
    # 2048x1000 fc classifier (2,049,000 parameters).
    assert sum(p.numel() for p in r50.parameters()) == 25_557_032 - 2_049_000
    assert sum(p.numel() for p in r101.parameters()) == 44_549_160 - 2_049_000
    keys = list(r50.state_dict())
    assert keys[:6] == [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
    ]
    assert "layer1.0.downsample.0.weight" in keys and "layer4.2.conv3.weight" in keys
    # 53 convs + 53 BNs x 5 entries: torchvision resnet50 has 320 with fc.weight, fc.bias.
    assert len(keys) == 318


def test_builder_errors_are_explicit() -> None:
    with pytest.raises(InputError, match=r"segnext_tiny.*deeplabv3plus_r101"):
        build_model("segnext_huge", 19)
    with pytest.raises(InputError, match="num_classes"):
        build_model("segnext_tiny", 0)
    with pytest.raises(InputError, match="output_stride"):
        build_model("segnext_tiny", 19, output_stride=8)
    with pytest.raises(InputError, match="'tiny', 'small', 'base', 'large'"):
        build_segnext("t", 19)
    with pytest.raises(InputError, match="output_stride"):
        build_model("deeplabv3plus_r50", 19, output_stride=32)
    with pytest.raises(InputError, match="drop_path_rate"):
        build_model("deeplabv3plus_r50", 19, drop_path_rate=0.1)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        build_segnext("tiny", 2)(torch.randn(3, 32, 32))


@pytest.mark.parametrize("name", ["segnext_tiny", "deeplabv3plus_r50"])
def test_dropout_option_governs_every_head_dropout(name: str) -> None:
    with torch.device("meta"):
        off = build_model(name, 3, dropout=0.0)
        on = build_model(name, 3, dropout=0.3)
    assert not any(isinstance(m, torch.nn.Dropout2d) for m in off.modules())
    probs = [m.p for m in on.modules() if isinstance(m, torch.nn.Dropout2d)]
    assert probs and all(p == 0.3 for p in probs)
