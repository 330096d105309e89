"""benchmarks/gpu_check.py: the CPU quick run reports every section, and the CPU sync counter
counts what would synchronise a GPU."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
REFERENCE = Path(os.environ.get("AUCSEG_SHARED", ROOT.parent / "shared")) / "reference"
SECTIONS = (
    "reference", "loss", "memory_bank", "train_step", "inference", "runtime_options",
    "host_syncs", "cli",
)  # fmt: skip


@pytest.fixture
def gpu_check(monkeypatch):
    """The script as a module (its sibling helpers on the path, as when run as a script)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    return importlib.import_module("gpu_check")


@pytest.mark.slow
def test_quick_cpu_run_reports_every_section(tmp_path):
    out = tmp_path / "check.json"
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out)]
    have_reference = (REFERENCE / "segnext_tiny_c19_io.npz").is_file()
    if have_reference:
        cmd += ["--reference", str(REFERENCE)]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=480)
    assert out.is_file(), proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["sections"]) == set(SECTIONS)
    statuses = {name: sec["status"] for name, sec in result["sections"].items()}
    expected = {name: "ok" for name in SECTIONS}
    if not have_reference:
        expected["reference"] = "skipped: no reference folder (give --reference DIR)"
    assert statuses == expected, proc.stderr[-3000:]
    assert proc.returncode == (0 if have_reference else 1)
    for name, sec in result["sections"].items():
        assert sec["rows"] or name == "reference"
        for r in sec["rows"]:
            assert r["status"] in ("ok", "info"), (name, r)
            assert f"| {name} | {r['measurement']} |" in proc.stdout
    cli = [r["measurement"] for r in result["sections"]["cli"]["rows"]]
    assert cli == [
        "aucseg make-synthetic",
        "aucseg train, 2 iterations, bf16",
        "aucseg train --resume, to 4",
        "aucseg test",
    ]


def test_sync_counter_counts_device_reads_not_host_ones(gpu_check):
    weight = torch.randn(8)  # made before the counter: a "device" tensor, like a parameter
    with gpu_check.HostSyncCounter() as counter:
        x = weight * 2
        x.sum().item()
        bool(x.max() > 0)
        x[x > 0]
        x[x > 0] = 0.0  # a scalar fill through the mask: masked_fill, no sync
        host = x.detach().cpu()
        host.tolist()
        int(host.sum())
        torch.arange(4).tolist()  # made on the host (no device=): not a sync
        torch.zeros(3, device=x.device).tolist()
        counter.paused = True
        x.max().item()
        counter.paused = False
    names = [event.split(" at ")[0] for event in counter.events]
    assert names == ["item", "__bool__", "__getitem__", "cpu", "tolist"]
    assert all("test_gpu_check.py" in event for event in counter.events)


def test_step_marks_split_events_by_step(gpu_check):
    marks = gpu_check.StepMarks()

    class FakeTrainer:
        iteration = 0

    marks.trainer = FakeTrainer()
    for events in (["a"], [], ["b", "skip", "c"]):
        marks.before_step()
        marks.events.extend(events)
        marks.trainer.iteration += 1
    per_step = marks.per_step(lambda e: None if e == "skip" else e)
    assert per_step == {1: ["a"], 2: [], 3: ["b", "c"]}
