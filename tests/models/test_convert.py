"""The ``aucseg convert`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aucseg.cli import main
from aucseg.models import build_segnext, load_checkpoint, read_checkpoint

SRC = Path(__file__).resolve().parents[2] / "src"


def test_convert_official_checkpoint(reference_dir: Path, tmp_path: Path) -> None:
    official = reference_dir / "segnext_tiny_c19_official_format.pth"
    dst = tmp_path / "t.safetensors"
    assert main(["convert", str(official), str(dst)]) == 0  # model and classes inferred
    state, kind, meta = read_checkpoint(dst)
    assert kind == "safetensors"
    assert (meta["model"], meta["num_classes"]) == ("segnext_tiny", 19)
    assert meta["source_kind"] == "mmseg"
    ref, _, _ = read_checkpoint(official)
    assert sorted(state) == sorted(ref)
    for key in ref:
        torch.testing.assert_close(state[key], ref[key], rtol=0, atol=0)
    # And back to a torch file, naming the model explicitly.
    out = tmp_path / "t.pth"
    args = ["convert", str(dst), str(out), "--model", "segnext_tiny", "--num-classes", "19"]
    assert main(args) == 0
    report = load_checkpoint(build_segnext("tiny", 19), out)
    assert report.kind == "aucseg" and report.meta["model"] == "segnext_tiny"


def test_convert_backbone_file(tmp_path: Path) -> None:
    backbone = build_segnext("tiny", 2).backbone.state_dict()
    torch.save({**backbone, "head.weight": torch.zeros(10, 256)}, tmp_path / "mscan_t.pth")
    assert main(["convert", str(tmp_path / "mscan_t.pth"), str(tmp_path / "b.pth")]) == 0
    state, _, meta = read_checkpoint(tmp_path / "b.pth")
    assert meta["target"] == "backbone" and list(state) == list(backbone)


def test_convert_reports_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save(build_segnext("tiny", 5).state_dict(), tmp_path / "t5.pth")
    src, dst = str(tmp_path / "t5.pth"), str(tmp_path / "o.pth")
    args = ["convert", src, dst, "--model", "segnext_small"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "does not fit segnext_small (5 classes)" in err and "shape mismatches" in err
    assert "it looks like segnext_tiny with 5 classes" in err and err.count("\n") == 1
    assert not (tmp_path / "o.pth").exists()


def test_convert_help_in_subprocess() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-m", "aucseg", "convert", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "--num-classes" in out.stdout and "safetensors" in out.stdout


def test_convert_missing_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", str(tmp_path / "absent.pth"), str(tmp_path / "o.pth")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
