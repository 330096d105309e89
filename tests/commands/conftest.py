"""Shared pieces of the command-line tests: generated data, small configs, CLI runners.

Every test here drives ``aucseg`` through its command line: :func:`run_cli` calls
``aucseg.cli.main`` in this process, :func:`run_subprocess` starts ``python -m aucseg`` where a
separate process is needed (signals, DataLoader workers); distributed runs start through
``tests/conftest.py``'s ``torchrun`` with :func:`subprocess_env`. The data are written once
per session by ``aucseg make-synthetic`` (8 train / 4 val scenes, 64x128, 19 classes).

Two models keep runs short: ``segnext_tiny`` where the real model matters, and the small
network of ``external_model.py`` (``model.name: external_model:make``, found through
``sys.path`` in-process and ``PYTHONPATH`` in subprocesses) where only the wiring does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import aucseg
from aucseg.cli import main

HERE = Path(__file__).resolve().parent
SRC = Path(aucseg.__file__).resolve().parents[1]
EXTERNAL = "external_model:make"


@dataclass
class Result:
    """Exit code and captured output of one command."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(capsys: pytest.CaptureFixture, *argv: Any) -> Result:
    """``aucseg ARGV`` in this process; what it printed is returned, not shown."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment of a child ``python``: this checkout's package and ``external_model``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(HERE)]), OMP_NUM_THREADS="1")
    env.pop("AUCSEG_DEBUG", None)
    env.update(extra)
    return env


def aucseg_command(*argv: Any) -> list[str]:
    """``python -m aucseg ARGV`` as an argument list."""
    return [sys.executable, "-m", "aucseg", *map(str, argv)]


def run_subprocess(*argv: Any, timeout: float = 300) -> Result:
    """``python -m aucseg ARGV`` in a child process."""
    proc = subprocess.run(
        aucseg_command(*argv), env=subprocess_env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    return Result(proc.returncode, proc.stdout, proc.stderr)


def overrides(**values: Any) -> list[str]:
    """``--set key=value ...`` from keyword arguments (``__`` stands for ``.``)."""
    return ["--set", *[f"{k.replace('__', '.')}={v}" for k, v in values.items()]]


def checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint file's dict."""
    return torch.load(path, map_location="cpu", weights_only=True)


def log_records(work_dir: Path, tag: str = "train") -> list[dict[str, Any]]:
    """The ``log.jsonl`` records of ``tag``."""
    lines = (work_dir / "log.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return [r for r in records if r["tag"] == tag]


def small_config(root: Path, model: dict[str, Any] | None = None, **sections: Any) -> dict:
    """A complete small run on the generated data: CE, batch 2, 64x64 crops, 4 iterations,
    evaluation and a checkpoint every 2, CPU, no TensorBoard or progress bar."""
    cfg: dict[str, Any] = {
        "model": model or {"name": EXTERNAL, "num_classes": 19},
        "loss": {"terms": [{"name": "cross_entropy"}]},
        "data": {
            "dataset": "cityscapes",
            "root": str(root),
            "train_split": "train",
            "val_split": "val",
            "img_scale": [128, 64],
            "crop_size": [64, 64],
            "batch_size": 2,
            "num_workers": 0,
        },
        "optimizer": {"lr": 1e-3},
        "schedule": {"max_iters": 4, "warmup_iters": 1},
        "evaluation": {"interval": 2},
        "runtime": {
            "device": "cpu",
            "log_interval": 1,
            "checkpoint_interval": 2,
            "tensorboard": False,
            "progress": False,
        },
    }
    for section, values in sections.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    return cfg


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    """Write ``cfg`` as a YAML config file."""
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op thread, as the child processes get: on a shared 2-core machine a second
    thread waiting for a descheduled first one makes SegNeXt-T steps several times slower.
    Session scope: set before the session's runs below are made."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated scenes in the Cityscapes layout, written by ``aucseg make-synthetic``."""
    root = tmp_path_factory.mktemp("synthetic")
    code = main(["make-synthetic", "--root", str(root), "--num-train", "8", "--num-val", "4",
                 "--height", "64", "--width", "128"])  # fmt: skip
    assert code == 0
    return root


@pytest.fixture(scope="session")
def external_on_path():
    """``external_model`` importable in this process, as ``PYTHONPATH`` makes it for children."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(HERE))
        yield EXTERNAL


@pytest.fixture(scope="session")
def tiny_config(synthetic: Path, external_on_path: str, tmp_path_factory) -> Path:
    """YAML config of a small run of the external model."""
    path = tmp_path_factory.mktemp("configs") / "tiny.yaml"
    return write_config(path, small_config(synthetic))


@pytest.fixture(scope="session")
def segnext_config(synthetic: Path, tmp_path_factory) -> Path:
    """YAML config of a small SegNeXt-T run (no drop_path_rate: the variant's default)."""
    model = {"name": "segnext_tiny", "num_classes": 19, "pretrained": None}
    path = tmp_path_factory.mktemp("configs") / "segnext.yaml"
    return write_config(path, small_config(synthetic, model=model))


def _train(config: Path, work_dir: Path, *extra: Any) -> Path:
    code = main(["train", str(config), "--work-dir", str(work_dir), *map(str, extra)])
    assert code == 0
    return work_dir


@pytest.fixture(scope="session")
def tiny_run(tiny_config: Path, tmp_path_factory) -> Path:
    """Work dir of a finished 4-iteration run of the external model."""
    return _train(tiny_config, tmp_path_factory.mktemp("tiny_run"))


@pytest.fixture(scope="session")
def segnext_run(segnext_config: Path, tmp_path_factory) -> Path:
    """Work dir of a finished 4-iteration SegNeXt-T run."""
    return _train(segnext_config, tmp_path_factory.mktemp("segnext_run"))
