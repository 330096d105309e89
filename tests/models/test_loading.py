"""Files against the registry: architecture inference, strict-load diagnoses, conversion."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aucseg.errors import CheckpointError
from aucseg.models import (
    build_model,
    build_segnext,
    closest_model,
    convert_checkpoint,
    infer_model,
    load_checkpoint,
    read_checkpoint,
)


@pytest.fixture(scope="module")
def source() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_segnext("tiny", num_classes=4)


def _assert_one_line(err: pytest.ExceptionInfo[CheckpointError], path: Path) -> str:
    text = str(err.value)
    assert text.startswith(f"{path} does not fit ") and "\n" not in text
    assert len(text) < 700, text
    return text


def test_infer_model(source: torch.nn.Module) -> None:
    assert infer_model(source.state_dict()) == ("segnext_tiny", 4)
    assert infer_model(source.backbone.state_dict()) == ("segnext_tiny", None)
    with torch.device("meta"):
        r101 = build_model("deeplabv3plus_r101", 3, output_stride=8)
    assert infer_model(r101.state_dict()) == ("deeplabv3plus_r101", 3)
    with pytest.raises(CheckpointError, match="matches no registered model"):
        infer_model({"x.weight": torch.zeros(1)})
    state = dict(source.state_dict())
    del state["decode_head.align.gn.bias"]
    assert closest_model(state) == ("segnext_tiny", 4, 1)


def test_other_class_count_is_named(source: torch.nn.Module, tmp_path: Path) -> None:
    torch.save(source.state_dict(), tmp_path / "t4.pth")
    model = build_segnext("tiny", num_classes=19)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(model, tmp_path / "t4.pth")
    text = _assert_one_line(info, tmp_path / "t4.pth")
    assert text == (
        f"{tmp_path / 't4.pth'} does not fit segnext_tiny (19 classes): 2 shape mismatches "
        "(decode_head.conv_seg.weight: checkpoint (4, 256, 1, 1) vs model (19, 256, 1, 1), ...); "
        "it looks like segnext_tiny with 4 classes: build that model or pass the matching config"
    )


def test_other_architecture_is_one_line(source: torch.nn.Module, tmp_path: Path) -> None:
    torch.save({"meta": {}, "state_dict": source.state_dict()}, tmp_path / "t4.pth")
    with torch.device("meta"):  # nothing is copied before the check fails
        model = build_model("segnext_small", 19)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(model, tmp_path / "t4.pth")
    text = _assert_one_line(info, tmp_path / "t4.pth")
    assert "does not fit segnext_small (19 classes): " in text
    assert "unexpected (e.g. backbone.block1.2." in text
    assert "shape mismatches (backbone.patch_embed1.proj.0.weight: checkpoint (16, 3, 3, 3)" in text
    assert text.endswith(
        "it looks like segnext_tiny with 4 classes: build that model or pass the matching config"
    )


def test_near_miss_and_strict_false(source: torch.nn.Module, tmp_path: Path) -> None:
    state = dict(source.state_dict())
    del state["decode_head.align.gn.bias"]
    state["decode_head.extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.pth")
    model = build_segnext("tiny", num_classes=19)  # conv_seg has 19 rows, the file 4
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(model, tmp_path / "bad.pth")
    text = _assert_one_line(info, tmp_path / "bad.pth")
    assert "1 missing key (e.g. decode_head.align.gn.bias)" in text
    assert "1 unexpected (e.g. decode_head.extra.weight)" in text
    assert "(closest: segnext_tiny with 4 classes, 2 entries differ)" in text
    assert "strict=False" in text
    report = load_checkpoint(model, tmp_path / "bad.pth", strict=False)
    assert report.missing_keys == ["decode_head.align.gn.bias"]
    assert report.unexpected_keys == ["decode_head.extra.weight"]
    assert [m.split(":")[0] for m in report.mismatched_keys] == [
        "decode_head.conv_seg.weight",
        "decode_head.conv_seg.bias",
    ]
    for key, value in source.backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value, rtol=0, atol=0)


def test_backbone_file_of_another_model(source: torch.nn.Module, tmp_path: Path) -> None:
    torch.save(source.backbone.state_dict(), tmp_path / "mscan_t.pth")
    with torch.device("meta"):
        model = build_model("segnext_base", 19)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(model, tmp_path / "mscan_t.pth")
    text = _assert_one_line(info, tmp_path / "mscan_t.pth")
    assert "does not fit the backbone of segnext_base (19 classes)" in text
    assert text.endswith(
        "it looks like a segnext_tiny backbone: build that model or pass the matching config"
    )


def test_convert_keeps_the_config(source: torch.nn.Module, tmp_path: Path) -> None:
    config = {"model": {"name": "segnext_tiny", "num_classes": 4}, "data": {"crop": [64, 64]}}
    ckpt = {"model": source.state_dict(), "optimizer": {}, "iteration": 7, "config": config}
    torch.save(ckpt, tmp_path / "last.pth")
    dst, meta = convert_checkpoint(tmp_path / "last.pth", tmp_path / "clean.pth")
    assert (meta["model"], meta["num_classes"], meta["source_kind"]) == (
        "segnext_tiny",
        4,
        "aucseg",
    )
    written = torch.load(dst, weights_only=True)
    assert written["config"] == config and "optimizer" not in written
    _, _, read_meta = read_checkpoint(tmp_path / "clean.pth")
    assert read_meta["config"] == config
    # Into safetensors too, and an explicit config replaces the stored one.
    other = {"model": {"name": "segnext_tiny", "num_classes": 4}}
    convert_checkpoint(dst, tmp_path / "clean.safetensors", config=other)
    assert read_checkpoint(tmp_path / "clean.safetensors")[2]["config"] == other
    # An official file holds no aucseg config: none is written.
    torch.save({"meta": {"config": "text"}, "state_dict": source.state_dict()}, tmp_path / "o.pth")
    convert_checkpoint(tmp_path / "o.pth", tmp_path / "o_clean.pth")
    assert "config" not in torch.load(tmp_path / "o_clean.pth", weights_only=True)


def test_convert_mismatch_is_one_line(source: torch.nn.Module, tmp_path: Path) -> None:
    torch.save(source.state_dict(), tmp_path / "t4.pth")
    with pytest.raises(CheckpointError) as info:
        convert_checkpoint(tmp_path / "t4.pth", tmp_path / "o.pth", "segnext_tiny", 19)
    text = _assert_one_line(info, tmp_path / "t4.pth")
    assert "it looks like segnext_tiny with 4 classes" in text
    assert not (tmp_path / "o.pth").exists()


def test_convert_external_model_with_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    model = build_model("external_models:make", 3, width=5)
    torch.save(model.state_dict(), tmp_path / "ext.pth")
    _, meta = convert_checkpoint(
        tmp_path / "ext.pth",
        tmp_path / "ext_clean.pth",
        "external_models:make",
        3,
        options={"width": 5},
    )
    assert meta["options"] == {"width": 5}
    fresh = build_model("external_models:make", 3, width=5)
    assert load_checkpoint(fresh, tmp_path / "ext_clean.pth").loaded == len(model.state_dict())
