"""The README's quick start runs as written, command by command, on generated data."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart_commands() -> list[list[str]]:
    """The ``aucseg`` command lines of the quick-start block (comments and continuations)."""
    text = README.read_text()
    section = text[text.index("## Quick start") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    joined = block.replace("\\\n", " ")
    lines = [ln.split("#", 1)[0].strip() for ln in joined.splitlines()]
    return [shlex.split(ln) for ln in lines if ln]


def test_quickstart_block_is_aucseg_commands():
    commands = quickstart_commands()
    assert [c[1] for c in commands] == ["make-synthetic", "stats", "train", "test", "predict"]
    assert all(c[0] == "aucseg" for c in commands)


@pytest.mark.slow
def test_readme_quickstart_runs(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(README.parent / "src")}
    for command in quickstart_commands():
        proc = subprocess.run(
            [sys.executable, "-m", "aucseg", *command[1:]],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, f"{shlex.join(command)}\n{proc.stderr[-2000:]}"
    metrics = json.loads((tmp_path / "runs/quick/metrics.json").read_text())
    assert metrics["provenance"]["iteration"] == 20
    assert 0.0 <= metrics["mIoU"] <= 100.0
    preds = tmp_path / "runs/preds"
    assert (preds / "legend.png").is_file()
    assert len(list(preds.glob("*_labels.png"))) == 8
