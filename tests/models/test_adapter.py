"""Networks built by import path run through SegmentorAdapter: input-size logits, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aucseg.errors import InputError
from aucseg.models import (
    SegmentorAdapter,
    build_model,
    extract_logits,
    load_checkpoint,
    load_pretrained,
)

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _external_models_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


@pytest.mark.parametrize("factory", ["make", "make_logits_attribute"])
def test_external_factory_gives_input_size_logits(factory: str) -> None:
    torch.manual_seed(0)
    model = build_model(f"external_models:{factory}", num_classes=5).train()
    assert isinstance(model, SegmentorAdapter) and model.num_classes == 5
    images = torch.randn(2, 3, 30, 42)
    logits = model(images)
    assert logits.shape == (2, 5, 30, 42) and logits.dtype == torch.float32
    # Bilinear, align_corners=False upsampling of the stride-4 logits (8 x 11 here).
    raw = extract_logits(model.model(images))
    assert raw.shape == (2, 5, 8, 11)
    expected = torch.nn.functional.interpolate(
        raw, size=(30, 42), mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    logits.logsumexp(dim=1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_options_reach_the_factory() -> None:
    model = build_model("external_models:make", 3, width=6)
    assert model.model.stem.out_channels == 6


def test_state_dict_round_trip_into_a_fresh_adapter(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trained = build_model("external_models:make", 4).train()
    trained(torch.randn(2, 3, 16, 16))  # moves the BN running statistics off their defaults
    torch.save({"model": trained.state_dict()}, tmp_path / "ext.pth")
    torch.manual_seed(1)
    fresh = build_model("external_models:make", 4)
    assert not torch.equal(fresh.model.stem.weight, trained.model.stem.weight)
    report = load_checkpoint(fresh, tmp_path / "ext.pth")
    assert (report.kind, report.loaded) == ("aucseg", len(trained.state_dict()))
    assert list(fresh.state_dict()) == list(trained.state_dict())
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)
    images = torch.randn(1, 3, 20, 24)
    torch.testing.assert_close(fresh.eval()(images), trained.eval()(images), rtol=0, atol=0)


def test_bare_network_file_loads_into_the_adapter(tmp_path: Path) -> None:
    """A state_dict of the unwrapped network (no ``model.`` prefix) fits the adapter."""
    torch.manual_seed(0)
    source = build_model("external_models:make", 4)
    torch.save(source.model.state_dict(), tmp_path / "bare.pth")
    target = build_model("external_models:make", 4, pretrained=tmp_path / "bare.pth")
    torch.testing.assert_close(target.model.stem.weight, source.model.stem.weight)
    report = load_pretrained(build_model("external_models:make", 4), tmp_path / "bare.pth")
    assert report.target == "model" and report.missing_keys == report.unexpected_keys == []


def test_wrong_outputs_are_reported() -> None:
    with pytest.raises(InputError, match=r"returned logits of shape \(1, 3, 4, 4\).*\(1, 5\)"):
        build_model("external_models:make_ignoring_classes", 5)(torch.randn(1, 3, 16, 16))
    with pytest.raises(InputError, match=r"'aux', 'x'.*'out'"):
        extract_logits({"aux": torch.zeros(1), "x": torch.zeros(1)})
    with pytest.raises(InputError, match="returned a list"):
        extract_logits([torch.zeros(1)])
    with pytest.raises(InputError, match="not labels"):
        SegmentorAdapter(torch.nn.Identity(), 3)(torch.zeros(1, 3, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        build_model("external_models:make", 2)(torch.randn(3, 16, 16))
    with pytest.raises(TypeError, match=r"nn\.Module"):
        SegmentorAdapter(lambda x: x, 3)  # type: ignore[arg-type]
