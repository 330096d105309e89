"""A training process and its end: SIGINT/SIGTERM save and exit with the resume command,
SIGKILL plus ``--resume`` reproduces the uninterrupted run, and a process with DataLoader
workers exits when it is done."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from aucseg.cli import main

from .conftest import (
    aucseg_command,
    checkpoint,
    log_records,
    overrides,
    run_cli,
    run_subprocess,
    subprocess_env,
)


def _logged_iterations(work_dir: Path) -> list[int]:
    path = work_dir / "log.jsonl"
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.endswith("}")]
    return [json.loads(line)["iter"] for line in lines if '"tag": "train"' in line]


def _wait_for_log(proc: subprocess.Popen, work_dir: Path, iteration: int) -> None:
    deadline = time.monotonic() + 240
    while max(_logged_iterations(work_dir), default=0) < iteration:
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before the signal"
        assert time.monotonic() < deadline, "the run did not reach the signal point"
        time.sleep(0.02)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_last_pth_and_prints_resume_command(
    signum, code, tmp_path, capsys, tiny_config
):
    work = (tmp_path / "run").resolve()
    args = overrides(model__delay=0.05, schedule__max_iters=30, evaluation__interval=0,
                     runtime__checkpoint_interval=1000, data__num_workers=1)  # fmt: skip
    cmd = aucseg_command("train", tiny_config, "--work-dir", work, *args)
    proc = subprocess.Popen(cmd, env=subprocess_env(), stderr=subprocess.PIPE, text=True)
    _wait_for_log(proc, work, 2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    stopped = checkpoint(work / "checkpoints" / "last.pth")["iteration"]
    assert 2 <= stopped < 30
    hint = (
        f"interrupted at iteration {stopped}; resume with: aucseg train --work-dir {work} --resume"
    )
    assert err.strip().splitlines()[-1] == f"aucseg train: {hint}"
    result = run_cli(capsys, "train", "--work-dir", work, "--resume", "--set", "data.num_workers=0")
    assert result.code == 0, result.err
    assert checkpoint(work / "checkpoints" / "last.pth")["iteration"] == 30


def test_run_with_loader_workers_exits_when_done(tmp_path, tiny_config):
    args = overrides(data__num_workers=1, schedule__max_iters=2, evaluation__interval=0)
    result = run_subprocess(
        "train", tiny_config, "--work-dir", tmp_path / "run", *args, timeout=120
    )
    assert result.code == 0, result.err


def _bank_run_args(root: Path) -> list[str]:
    """The shipped AUCSeg config (Square AUC + CE + T-Memory Bank) on SegNeXt-T, small."""
    return ["synthetic_aucseg_segnext_t", *overrides(
        data__root=root, data__num_workers=0, data__batch_size=2, data__crop_size="[64,64]",
        data__img_scale="[128,64]", schedule__max_iters=6, schedule__warmup_iters=2,
        evaluation__interval=3, runtime__checkpoint_interval=2, runtime__log_interval=1,
        runtime__tensorboard="false", runtime__progress="false", runtime__device="cpu",
    )]  # fmt: skip


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory, synthetic):
    """An uninterrupted run, and the same run SIGKILLed after logging past its last checkpoint
    and then resumed: ``(full, resumed, iteration of last.pth at the kill, logged before)``."""
    full, killed = tmp_path_factory.mktemp("full"), tmp_path_factory.mktemp("killed")
    args = _bank_run_args(synthetic)
    cmd = aucseg_command("train", *args[:1], "--work-dir", killed, *args[1:])
    env = subprocess_env(OMP_NUM_THREADS=str(torch.get_num_threads()))
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    try:
        _wait_for_log(proc, killed, 3)
    finally:
        proc.kill()
        proc.wait()
    logged = max(_logged_iterations(killed))
    stopped = checkpoint(killed / "checkpoints" / "last.pth")["iteration"]
    # the same thread count in this process as in the killed one: bitwise equal arithmetic
    assert main(["train", "--work-dir", str(killed), "--resume"]) == 0
    assert main(["train", args[0], "--work-dir", str(full), *args[1:]]) == 0
    return full, killed, stopped, logged


def test_sigkill_and_resume_reproduce_the_uninterrupted_run(killed_and_resumed):
    full, resumed, stopped, _ = killed_and_resumed
    assert 2 <= stopped < 6, f"the run was not killed mid-way (last.pth at {stopped})"
    a = checkpoint(full / "checkpoints" / "last.pth")
    b = checkpoint(resumed / "checkpoints" / "last.pth")
    assert a["iteration"] == b["iteration"] == 6
    for name, value in a["model"].items():
        torch.testing.assert_close(b["model"][name], value, rtol=0, atol=0, msg=name)
    assert a["best_metric"] == b["best_metric"]


def test_log_holds_each_iteration_once_after_sigkill_and_resume(killed_and_resumed):
    full, resumed, stopped, logged = killed_and_resumed
    assert logged > stopped  # the killed run had logged iterations that the resume repeats
    for tag in ("train", "val"):
        iterations = [r["iter"] for r in log_records(resumed, tag)]
        assert iterations == [r["iter"] for r in log_records(full, tag)], tag
        assert len(iterations) == len(set(iterations)), tag
