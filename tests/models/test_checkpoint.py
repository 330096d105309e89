"""Checkpoint formats, prefixes, backbone files and clear errors for bad files."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from aucseg.errors import CheckpointError
from aucseg.models import (
    build_model,
    build_segnext,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint_file,
)

SRC = Path(__file__).resolve().parents[2] / "src"


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


class _RunsCode:
    def __reduce__(self):  # unpickling would call print(): code execution
        return (print, ("unpickled",))


def test_pickled_code_is_refused(source: torch.nn.Module, tmp_path: Path) -> None:
    torch.save({"state_dict": source.state_dict(), "hook": _RunsCode()}, tmp_path / "evil.pth")
    with pytest.raises(
        CheckpointError, match=r"refused to load, unpickling it would run code"
    ) as info:
        load_checkpoint(build_segnext("tiny", 4), tmp_path / "evil.pth")
    assert "print" in str(info.value) and "\n" not in str(info.value)


_WRITE_MMSEG1 = """
import sys, torch
from mmengine.logging.history_buffer import HistoryBuffer
state = torch.load(sys.argv[1], weights_only=True)
hub = {"log_scalars": {"loss": HistoryBuffer()}}
torch.save({"meta": {"iter": 5}, "state_dict": state, "message_hub": hub}, sys.argv[2])
"""


def test_mmseg1_training_state_loads_as_placeholders(
    source: torch.nn.Module, tmp_path: Path
) -> None:
    """mmengine training checkpoints pickle a HistoryBuffer in "message_hub".

    The file is written in a subprocess that can import a stand-in ``mmengine`` package; this
    process cannot import mmengine and still reads the file.
    """
    package = tmp_path / "fake_site" / "mmengine" / "logging"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "history_buffer.py").write_text(
        textwrap.dedent(
            """
            class HistoryBuffer:
                def __init__(self):
                    self.data = [1.0, 2.0]
            """
        )
    )
    torch.save(source.state_dict(), tmp_path / "plain.pth")
    env = {**os.environ, "PYTHONPATH": f"{package.parents[1]}{os.pathsep}{SRC}"}
    args = [sys.executable, "-c", _WRITE_MMSEG1, str(tmp_path / "plain.pth")]
    subprocess.run([*args, str(tmp_path / "iter_5.pth")], env=env, check=True)
    assert "mmengine" not in sys.modules
    model = build_segnext("tiny", num_classes=4)
    report = load_checkpoint(model, tmp_path / "iter_5.pth")
    assert report.kind == "mmseg" and report.meta == {"iter": 5}
    _assert_same(model, source)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file_is_reported(source: torch.nn.Module, tmp_path: Path, suffix: str) -> None:
    kind = "safetensors" if suffix == ".safetensors" else "mmseg"
    path = _write(kind, source.state_dict(), tmp_path / f"full{suffix}")
    data = path.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as info:
        load_checkpoint(build_segnext("tiny", 4), cut)
    assert str(info.value).startswith(str(cut)) and "\n" not in str(info.value)


def test_missing_file_and_unknown_layouts(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        read_checkpoint(tmp_path / "nope.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list"):
        read_checkpoint(tmp_path / "list.pth")
    torch.save({"weights": {"a": torch.zeros(1)}, "epoch": 3}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="unknown checkpoint layout"):
        read_checkpoint(tmp_path / "odd.pth")
    torch.save({"state_dict": {"a": torch.zeros(1), "step": 3}}, tmp_path / "mixed.pth")
    with pytest.raises(CheckpointError, match="entry 'step' is a int, not a tensor"):
        read_checkpoint(tmp_path / "mixed.pth")


def _pickle_of_list(path: Path) -> None:
    with path.open("wb") as f:
        pickle.dump([1, 2, 3], f, protocol=4)


def _legacy_truncated(path: Path) -> None:
    torch.save({"a": torch.zeros(64)}, path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:200])


BAD_FILES = {
    "text.pth": (
        lambda p: p.write_text("hello\nnot a checkpoint\n"),
        r"not a checkpoint \(it starts with b'hello",
    ),
    "empty.pth": (lambda p: p.write_bytes(b""), "is empty"),
    "noise.pth": (lambda p: p.write_bytes(bytes(range(256)) * 4), "not a checkpoint"),
    "list.pkl": (_pickle_of_list, "a pickle but not a torch checkpoint"),
    "legacy.pth": (_legacy_truncated, "truncated or corrupt pickled checkpoint"),
    "text.safetensors": (lambda p: p.write_text("{}"), "not a readable safetensors file"),
}


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_files_that_are_no_checkpoint_give_one_line(tmp_path: Path, name: str) -> None:
    write, message = BAD_FILES[name]
    write(tmp_path / name)
    with pytest.raises(CheckpointError, match=message) as info:
        read_checkpoint(tmp_path / name)
    text = str(info.value)
    assert text.startswith(str(tmp_path / name)) and "\n" not in text and len(text) < 400


def test_clean_file_roundtrip_keeps_meta_and_config(
    source: torch.nn.Module, tmp_path: Path
) -> None:
    config = {"model": {"name": "segnext_tiny", "num_classes": 4}, "seed": 0}
    for name in ("clean.pth", "clean.safetensors"):
        meta = {"model": "segnext_tiny"}
        save_checkpoint_file(source.state_dict(), tmp_path / name, meta, config)
        state, kind, meta = read_checkpoint(tmp_path / name)
        assert kind == ("safetensors" if name.endswith("safetensors") else "aucseg")
        assert meta == {"model": "segnext_tiny", "config": config}
        assert sorted(state) == sorted(source.state_dict())  # safetensors sorts its keys
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.pth", "clean.safetensors"]
    # The torch file has the layout of a training checkpoint: config at the top level.
    assert torch.load(tmp_path / "clean.pth", weights_only=True)["config"] == config


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
