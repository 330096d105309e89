"""Checkpoint formats, prefixes, backbone files and clear errors for bad files."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from aucseg.models import (
    build_model,
    build_segnext,
    infer_model,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint_file,
)


@pytest.fixture(scope="module")
def source() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_segnext("tiny", num_classes=4)


def _assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0)


def _write(kind: str, state: dict[str, torch.Tensor], path: Path) -> Path:
    if kind == "mmseg":
        torch.save({"meta": {"CLASSES": ("a", "b", "c", "d")}, "state_dict": state}, path)
    elif kind == "aucseg":
        torch.save({"model": state, "optimizer": {"state": {}}, "iteration": 12}, path)
    elif kind == "state_dict":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


@pytest.mark.parametrize("kind", ["mmseg", "aucseg", "state_dict", "safetensors"])
@pytest.mark.parametrize("prefix", ["", "module.", "module._orig_mod."])
def test_every_format_loads_strict(
    source: torch.nn.Module, tmp_path: Path, kind: str, prefix: str
) -> None:
    state = {prefix + k: v for k, v in source.state_dict().items()}
    suffix = ".safetensors" if kind == "safetensors" else ".pth"
    path = _write(kind, state, tmp_path / f"ckpt{suffix}")
    model = build_segnext("tiny", num_classes=4)
    report = load_checkpoint(model, path)
    assert (report.kind, report.target) == (kind, "model")
    assert report.loaded == len(state)
    assert report.missing_keys == report.unexpected_keys == report.mismatched_keys == []
    _assert_same(model, source)
    if kind == "aucseg":
        assert report.meta["iteration"] == 12


def test_backbone_file_drops_classifier_and_loads_backbone(
    source: torch.nn.Module, tmp_path: Path
) -> None:
    state = dict(source.backbone.state_dict())
    state["head.weight"] = torch.zeros(1000, 256)
    state["head.bias"] = torch.zeros(1000)
    torch.save({"state_dict": state}, tmp_path / "mscan_t.pth")
    model = build_segnext("tiny", num_classes=7)
    head_before = {k: v.clone() for k, v in model.decode_head.state_dict().items()}
    report = load_checkpoint(model, tmp_path / "mscan_t.pth")
    assert report.target == "backbone"
    assert sorted(report.dropped_keys) == ["head.bias", "head.weight"]
    _assert_same(model.backbone, source.backbone)
    for key, value in model.decode_head.state_dict().items():
        torch.testing.assert_close(value, head_before[key], rtol=0, atol=0)


def test_torchvision_style_resnet_file_loads_into_backbone(tmp_path: Path) -> None:
    torch.manual_seed(1)
    ref = build_model("deeplabv3plus_r50", 3).backbone
    state = dict(ref.state_dict())
    state["fc.weight"] = torch.zeros(1000, 2048)
    state["fc.bias"] = torch.zeros(1000)
    torch.save(state, tmp_path / "resnet50.pth")
    model = build_model("deeplabv3plus_r50", 3)
    report = load_checkpoint(model, tmp_path / "resnet50.pth")
    assert (report.kind, report.target) == ("state_dict", "backbone")
    assert report.dropped_keys == ["fc.weight", "fc.bias"]
    _assert_same(model.backbone, ref)


def test_wrong_keys_and_shapes_are_listed(source: torch.nn.Module, tmp_path: Path) -> None:
    state = dict(source.state_dict())
    del state["decode_head.align.gn.bias"]
    state["decode_head.extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.pth")
    model = build_segnext("tiny", num_classes=19)  # conv_seg has 19 rows, the file 4
    with pytest.raises(ValueError) as info:
        load_checkpoint(model, tmp_path / "bad.pth")
    msg = str(info.value)
    assert "decode_head.align.gn.bias" in msg and "decode_head.extra.weight" in msg
    assert "decode_head.conv_seg.weight: checkpoint (4, 256, 1, 1) vs model (19, 256, 1, 1)" in msg
    assert "strict=False" in msg
    # Non-strict: load what matches, report the rest.
    report = load_checkpoint(model, tmp_path / "bad.pth", strict=False)
    assert report.missing_keys == ["decode_head.align.gn.bias"]
    assert report.unexpected_keys == ["decode_head.extra.weight"]
    assert [m.split(":")[0] for m in report.mismatched_keys] == [
        "decode_head.conv_seg.weight",
        "decode_head.conv_seg.bias",
    ]
    _assert_same(model.backbone, source.backbone)


class _RunsCode:
    def __reduce__(self):  # unpickling would call print(): code execution
        return (print, ("unpickled",))


def test_pickled_code_is_refused(source: torch.nn.Module, tmp_path: Path) -> None:
    torch.save({"state_dict": source.state_dict(), "hook": _RunsCode()}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="code execution"):
        load_checkpoint(build_segnext("tiny", 4), tmp_path / "evil.pth")


def test_mmseg1_training_state_loads_as_placeholders(
    source: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mmengine training checkpoints pickle a HistoryBuffer in "message_hub"."""
    module = types.ModuleType("mmengine.logging.history_buffer")

    class HistoryBuffer:
        def __init__(self) -> None:
            self.data = [1.0, 2.0]

    HistoryBuffer.__module__ = module.__name__
    HistoryBuffer.__qualname__ = "HistoryBuffer"
    module.HistoryBuffer = HistoryBuffer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mmengine", types.ModuleType("mmengine"))
    monkeypatch.setitem(sys.modules, "mmengine.logging", types.ModuleType("mmengine.logging"))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    hub = {"log_scalars": {"loss": HistoryBuffer()}}
    ckpt = {"meta": {"iter": 5}, "state_dict": source.state_dict(), "message_hub": hub}
    torch.save(ckpt, tmp_path / "iter_5.pth")
    monkeypatch.undo()  # mmengine is not importable while loading
    assert "mmengine" not in sys.modules
    model = build_segnext("tiny", num_classes=4)
    report = load_checkpoint(model, tmp_path / "iter_5.pth")
    assert report.kind == "mmseg"
    _assert_same(model, source)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file_is_reported(source: torch.nn.Module, tmp_path: Path, suffix: str) -> None:
    kind = "safetensors" if suffix == ".safetensors" else "mmseg"
    path = _write(kind, source.state_dict(), tmp_path / f"full{suffix}")
    data = path.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_checkpoint(build_segnext("tiny", 4), cut)


def test_missing_file_and_unknown_layouts(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        read_checkpoint(tmp_path / "nope.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="holds a list"):
        read_checkpoint(tmp_path / "list.pth")
    torch.save({"weights": {"a": torch.zeros(1)}, "epoch": 3}, tmp_path / "odd.pth")
    with pytest.raises(ValueError, match="unknown checkpoint layout"):
        read_checkpoint(tmp_path / "odd.pth")


def test_infer_model_and_roundtrip(source: torch.nn.Module, tmp_path: Path) -> None:
    assert infer_model(source.state_dict()) == ("segnext_tiny", 4)
    assert infer_model(source.backbone.state_dict()) == ("segnext_tiny", None)
    with pytest.raises(ValueError, match="matches no registered model"):
        infer_model({"x.weight": torch.zeros(1)})
    for name in ("clean.pth", "clean.safetensors"):
        save_checkpoint_file(source.state_dict(), tmp_path / name, {"model": "segnext_tiny"})
        state, kind, meta = read_checkpoint(tmp_path / name)
        assert kind == ("safetensors" if name.endswith("safetensors") else "aucseg")
        assert meta["model"] == "segnext_tiny"
        assert sorted(state) == sorted(source.state_dict())  # safetensors sorts its keys
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.pth", "clean.safetensors"]


def test_ddp_style_wrapper_is_unwrapped(source: torch.nn.Module, tmp_path: Path) -> None:
    torch.save(source.state_dict(), tmp_path / "s.pth")
    wrapped = torch.nn.DataParallel(build_segnext("tiny", 4))
    report = load_checkpoint(wrapped, tmp_path / "s.pth")
    assert report.target == "model"
    _assert_same(wrapped.module, source)


def test_build_model_pretrained_loads_backbone_non_strictly(
    source: torch.nn.Module, tmp_path: Path
) -> None:
    state = dict(source.backbone.state_dict())
    del state["norm4.bias"]  # missing entries keep their initialisation, as mmcv's init
    torch.save({**state, "head.weight": torch.zeros(10, 256)}, tmp_path / "mscan_t.pth")
    model = build_model("segnext_tiny", 9, pretrained=tmp_path / "mscan_t.pth")
    loaded = model.backbone.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    torch.testing.assert_close(loaded["norm4.bias"], torch.zeros(256), rtol=0, atol=0)
