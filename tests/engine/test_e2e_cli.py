"""End to end through the real command line on generated scenes: SIGKILL + resume, test,
predict, and a two-process torchrun run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SYNTH = str(ROOT / "configs" / "synthetic_aucseg_segnext_t.yaml")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    from aucseg.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic(root, layout="cityscapes", num_train=8, num_val=3, height=64, width=128)
    return root


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")


def _overrides(root: Path, max_iters: int = 6) -> list[str]:
    values = {
        "data.root": root,
        "data.num_workers": 0,
        "data.batch_size": 2,
        "data.crop_size": "[64,64]",
        "data.img_scale": "[128,64]",
        "schedule.max_iters": max_iters,
        "schedule.warmup_iters": 2,
        "evaluation.interval": 3,
        "runtime.checkpoint_interval": 2,
        "runtime.log_interval": 1,
        "runtime.tensorboard": "false",
        "runtime.progress": "false",
        "runtime.device": "cpu",
    }
    return ["--set", *[f"{k}={v}" for k, v in values.items()]]


def _train_cmd(work: Path, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "aucseg", "train", SYNTH, "--work-dir", str(work),
            *_overrides(root), *extra]  # fmt: skip


def _iteration(path: Path) -> int:
    return int(torch.load(path, weights_only=True)["iteration"]) if path.is_file() else -1


def test_sigkill_resume_matches_uninterrupted(tmp_path, data_root):
    full = tmp_path / "full"
    subprocess.run(_train_cmd(full, data_root), env=_env(), check=True, capture_output=True)

    killed = tmp_path / "killed"
    last = killed / "checkpoints" / "last.pth"
    proc = subprocess.Popen(_train_cmd(killed, data_root), env=_env(), stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while proc.poll() is None and _iteration(last) < 2 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = _iteration(last)
    assert 2 <= stopped_at < 6, f"the run was not killed mid-way (last.pth at {stopped_at})"

    cmd = _train_cmd(killed, data_root, "--resume")
    subprocess.run(cmd, env=_env(), check=True, capture_output=True)
    a = torch.load(full / "checkpoints" / "last.pth", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert a["iteration"] == b["iteration"] == 6
    for name, value in a["model"].items():
        torch.testing.assert_close(b["model"][name], value, rtol=0, atol=0, msg=name)

    out = tmp_path / "metrics.json"
    ckpt = str(full / "checkpoints" / "last.pth")
    test = [sys.executable, "-m", "aucseg", "test", SYNTH, ckpt, "--out", str(out),
            *_overrides(data_root)]  # fmt: skip
    subprocess.run(test, env=_env(), check=True, capture_output=True)
    metrics = json.loads(out.read_text())
    assert {"aAcc", "mIoU", "mAcc", "mIoU_head", "mIoU_middle", "mIoU_tail"} <= set(metrics)
    assert {"name", "iou", "acc"} <= set(metrics["per_class"][0])
    assert (tmp_path / "metrics_per_class.png").stat().st_size > 0

    image = next((data_root / "leftImg8bit" / "val").rglob("*.png"))
    pred = [sys.executable, "-m", "aucseg", "predict", ckpt, str(image), "--out",
            str(tmp_path / "pred")]  # fmt: skip
    subprocess.run(pred, env=_env(), check=True, capture_output=True)
    assert len(list((tmp_path / "pred").glob("*_overlay.png"))) == 1


@pytest.mark.distributed
def test_torchrun_two_processes(tmp_path, data_root):
    work = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "aucseg", "train", SYNTH, "--work-dir", str(work),
           *_overrides(data_root, max_iters=2)]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(work / "checkpoints" / "last.pth", weights_only=True)
    assert state["iteration"] == 2 and state["meta"]["world_size"] == 2
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    val = [r for r in records if r["tag"] == "val"]
    assert val and val[-1]["iter"] == 2 and 0.0 <= val[-1]["mIoU"] <= 100.0


def test_test_command_accepts_official_mmseg_checkpoint(tmp_path, data_root, reference_dir):
    official = reference_dir / "segnext_tiny_c19_official_format.pth"
    out = tmp_path / "official.json"
    cmd = [sys.executable, "-m", "aucseg", "test", "synthetic_ce_segnext_t", str(official),
           "--out", str(out), *_overrides(data_root)]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads(out.read_text())
    assert metrics["num_images"] == 3 and len(metrics["per_class"]) == 19
    assert 0.0 <= metrics["aAcc"] <= 100.0
