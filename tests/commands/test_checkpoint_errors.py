"""Unusable checkpoints and unusable output places: ``aucseg predict``, ``aucseg test`` and
``aucseg train --resume`` each answer with one error line and exit code 2, before any work."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from .conftest import checkpoint, run_cli


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory, tiny_run, segnext_run) -> dict[str, Path]:
    """One file per way a checkpoint can be unusable."""
    folder = tmp_path_factory.mktemp("bad_checkpoints")
    good = (tiny_run / "checkpoints" / "last.pth").read_bytes()
    files = {
        "corrupt": os.urandom(4096),
        "truncated": good[: len(good) // 2],
        "text": b"model weights are on the other disk\n",
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.pth"
        paths[name].write_bytes(data)
    paths["list"] = folder / "list.pth"
    torch.save([1, 2, 3], paths["list"])
    segnext = checkpoint(segnext_run / "checkpoints" / "last.pth")
    paths["mmseg"] = folder / "mmseg.pth"  # the official layout: weights and meta, no config
    torch.save({"state_dict": segnext["model"], "meta": {"CLASSES": list("abc")}}, paths["mmseg"])
    other = checkpoint(tiny_run / "checkpoints" / "last.pth")
    other["config"] = segnext["config"]  # the external model's weights under a SegNeXt config
    paths["other_arch"] = folder / "other_arch.pth"
    torch.save(other, paths["other_arch"])
    return paths


def _image(synthetic: Path) -> Path:
    return sorted((synthetic / "leftImg8bit" / "val").rglob("*.png"))[0]


def _assert_one_line(result, command: str, path: Path) -> None:
    assert result.code == 2, result.err
    assert len(result.err_lines) == 1, result.err
    assert result.err.startswith(f"aucseg {command}: error:") and path.name in result.err


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "text", "list", "mmseg", "other_arch"])
def test_predict_refuses_unusable_checkpoint(kind, tmp_path, capsys, bad_checkpoints, synthetic):
    path = bad_checkpoints[kind]
    result = run_cli(capsys, "predict", path, _image(synthetic), "--out", tmp_path / "pred")
    _assert_one_line(result, "predict", path)
    assert not list((tmp_path / "pred").glob("*.png"))


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "text", "list", "other_arch"])
def test_test_refuses_unusable_checkpoint(
    kind, capsys, bad_checkpoints, tiny_config, segnext_config
):
    config = segnext_config if kind == "other_arch" else tiny_config
    path = bad_checkpoints[kind]
    _assert_one_line(run_cli(capsys, "test", config, path), "test", path)


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "text", "list", "mmseg", "other_arch"])
def test_resume_refuses_unusable_checkpoint(kind, tmp_path, capsys, bad_checkpoints):
    path = bad_checkpoints[kind]
    work = tmp_path / "run"
    result = run_cli(capsys, "train", "--work-dir", work, "--resume", path)
    _assert_one_line(result, "train", path)
    assert not (work / "checkpoints").exists()


def test_directory_in_place_of_last_pth(tmp_path, capsys, tiny_config, tiny_run, synthetic):
    work = tmp_path / "run"
    shutil.copytree(tiny_run, work)
    last = work / "checkpoints" / "last.pth"
    last.unlink()
    last.mkdir()
    _assert_one_line(run_cli(capsys, "train", "--work-dir", work, "--resume"), "train", last)
    result = run_cli(capsys, "predict", last, _image(synthetic), "--out", tmp_path / "pred")
    _assert_one_line(result, "predict", last)
    _assert_one_line(run_cli(capsys, "test", tiny_config, last), "test", last)
    assert "directory" in result.err


def test_predict_out_naming_a_file(tmp_path, capsys, tiny_run, synthetic):
    out = tmp_path / "predictions.png"
    out.write_bytes(b"")
    ckpt = tiny_run / "checkpoints" / "last.pth"
    result = run_cli(capsys, "predict", ckpt, _image(synthetic), "--out", out)
    _assert_one_line(result, "predict", out)


@pytest.fixture
def forward_calls():
    """How many module forwards ran (every module of every model, through torch's global hook)."""
    calls = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *a: calls.append(1))
    yield calls
    handle.remove()


def test_test_out_unwritable_fails_before_evaluation(
    tmp_path, capsys, tiny_config, tiny_run, forward_calls
):
    blocker = tmp_path / "results"
    blocker.write_text("a file where a folder is needed")
    out = blocker / "metrics.json"
    ckpt = tiny_run / "checkpoints" / "last.pth"
    result = run_cli(capsys, "test", tiny_config, ckpt, "--out", out)
    _assert_one_line(result, "test", blocker)
    assert forward_calls == []  # refused before the model saw one image


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_work_dir(tmp_path, capsys, tiny_config):
    work = tmp_path / "run"
    work.mkdir()
    work.chmod(0o555)
    try:
        result = run_cli(capsys, "train", tiny_config, "--work-dir", work)
    finally:
        work.chmod(0o755)
    _assert_one_line(result, "train", work)
    assert "not writable" in result.err
