"""How ``aucseg train`` fails: a diverging run stops with exit 1 and only finite checkpoints;
bad data files, in the main process or in a DataLoader worker, are one error line (exit 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .conftest import checkpoint, overrides, run_cli, run_subprocess


def _copy_data(synthetic: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synthetic, tmp_path / "data"))


def test_diverging_run_exits_1_and_keeps_only_finite_checkpoints(tmp_path, capsys, segnext_config):
    work = tmp_path / "run"
    args = overrides(optimizer__lr=1e6, schedule__warmup_iters=0, schedule__max_iters=6,
                     runtime__checkpoint_interval=1, evaluation__interval=0)  # fmt: skip
    result = run_cli(capsys, "train", segnext_config, "--work-dir", work, *args)
    assert result.code == 1, result.err
    last = work / "checkpoints" / "last.pth"
    message = result.err_lines[-1]
    assert "loss term 'loss_ce'" in message or "the gradient" in message
    stopped = int(message.split("non-finite at iteration ")[1].split(";")[0])
    assert f"last good checkpoint is {last}" in message
    written = sorted((work / "checkpoints").glob("*.pth"))
    assert written
    for path in written:
        state = checkpoint(path)
        assert state["iteration"] < stopped
        assert all(torch.isfinite(v).all() for v in state["model"].values()), path


def test_corrupt_val_image_fails_after_saving_that_iteration(
    tmp_path, capsys, synthetic, tiny_config
):
    root = _copy_data(synthetic, tmp_path)
    bad = sorted((root / "leftImg8bit" / "val").rglob("*.png"))[1]
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    work = tmp_path / "run"
    result = run_cli(capsys, "train", tiny_config, "--work-dir", work,
                     *overrides(data__root=root))  # fmt: skip
    assert result.code == 2
    assert result.err_lines[-1].startswith("aucseg train: error:") and bad.name in result.err
    assert "Traceback" not in result.err
    assert checkpoint(work / "checkpoints" / "last.pth")["iteration"] == 2  # saved, then evaluated


def _worker_run(root: Path, tiny_config: Path, work: Path):
    return run_subprocess("train", tiny_config, "--work-dir", work,
                          *overrides(data__root=root, data__num_workers=1))  # fmt: skip


def test_bad_label_value_in_worker_is_one_line(tmp_path, synthetic, tiny_config):
    root = _copy_data(synthetic, tmp_path)
    for path in (root / "gtFine" / "train").rglob("*_labelTrainIds.png"):
        label = np.array(Image.open(path))
        label[:4, :4] = 200  # 19 classes: 0..18 and 255
        Image.fromarray(label).save(path)
    result = _worker_run(root, tiny_config, tmp_path / "run")
    assert result.code == 2
    assert len(result.err_lines) <= 2 and "Traceback" not in result.err
    assert result.err_lines[-1].startswith("aucseg train: error:") and "200" in result.err_lines[-1]


def test_truncated_image_in_worker_is_one_line(tmp_path, synthetic, tiny_config):
    root = _copy_data(synthetic, tmp_path)
    for path in (root / "leftImg8bit" / "train").rglob("*.png"):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    result = _worker_run(root, tiny_config, tmp_path / "run")
    assert result.code == 2
    assert len(result.err_lines) <= 2 and "Traceback" not in result.err
    line = result.err_lines[-1]
    assert line.startswith("aucseg train: error:") and "leftImg8bit" in line
