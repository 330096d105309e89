"""``aucseg train``: resuming from the stored config, keys frozen on resume, work-dir safety
and the files a run writes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from aucseg.fileio import TMP_SUFFIX

from .conftest import checkpoint, log_records, overrides, run_cli


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def _lrs(work_dir: Path) -> dict[int, dict[str, float]]:
    return {
        r["iter"]: {k: v for k, v in r.items() if k.startswith("lr/")}
        for r in log_records(work_dir)
    }


def test_resume_uses_stored_config_and_new_lr_takes_effect(tmp_path, capsys, tiny_config):
    first, resumed, fresh = tmp_path / "first", tmp_path / "resumed", tmp_path / "fresh"
    earlier = overrides(schedule__max_iters=6, evaluation__interval=0,
                        runtime__keep_iter_checkpoints="true")  # fmt: skip
    assert run_cli(capsys, "train", tiny_config, "--work-dir", first, *earlier).code == 0
    start = first / "checkpoints" / "iter_0000002.pth"
    # no CONFIG and none of the earlier --set items: the run's stored config is used
    result = run_cli(capsys, "train", "--work-dir", resumed, "--resume", start,
                     "--set", "optimizer.lr=0.1")  # fmt: skip
    assert result.code == 0, result.err
    assert checkpoint(resumed / "checkpoints" / "last.pth")["iteration"] == 6
    assert sorted(_lrs(resumed)) == [3, 4, 5, 6]
    same_schedule = overrides(schedule__max_iters=6, evaluation__interval=0, optimizer__lr=0.1)
    assert run_cli(capsys, "train", tiny_config, "--work-dir", fresh, *same_schedule).code == 0
    for it in (3, 4, 5, 6):
        assert _lrs(resumed)[it] == pytest.approx(_lrs(fresh)[it], rel=1e-12)
        assert _lrs(resumed)[it] != pytest.approx(_lrs(first)[it])


def test_resume_refuses_to_change_the_model(capsys, tiny_run):
    before = _snapshot(tiny_run)
    result = run_cli(capsys, "train", "--work-dir", tiny_run, "--resume",
                     "--set", "model.name=segnext_tiny")  # fmt: skip
    assert result.code == 2 and len(result.err_lines) == 1
    assert "model" in result.err and "cannot change when resuming" in result.err
    assert "architecture" in result.err  # the reason
    assert _snapshot(tiny_run) == before


def test_train_refuses_work_dir_holding_checkpoints(capsys, tiny_config, tiny_run):
    before = _snapshot(tiny_run)
    result = run_cli(capsys, "train", tiny_config, "--work-dir", tiny_run)
    assert result.code == 2 and len(result.err_lines) == 1
    assert "already holds checkpoints" in result.err and "--resume" in result.err
    assert _snapshot(tiny_run) == before


def test_stale_temp_files_are_removed_at_start(tmp_path, capsys, tiny_config, tiny_run):
    work = tmp_path / "run"
    shutil.copytree(tiny_run, work)
    stale = work / "checkpoints" / f".last.pth.k3j2{TMP_SUFFIX}"
    stale.write_bytes(b"half a checkpoint")
    stale_log = work / f".log.jsonl.x81q{TMP_SUFFIX}"
    stale_log.write_text('{"tag": "train", "iter": 1')
    result = run_cli(capsys, "train", "--work-dir", work, "--resume",
                     *overrides(schedule__max_iters=5))  # fmt: skip
    assert result.code == 0, result.err
    assert not stale.exists() and not stale_log.exists()
    assert checkpoint(work / "checkpoints" / "last.pth")["iteration"] == 5


def test_written_files_get_the_normal_mode(tmp_path, capsys, tiny_config):
    work = tmp_path / "run"
    previous = os.umask(0o022)
    try:
        args = overrides(schedule__max_iters=1, evaluation__interval=0)
        assert run_cli(capsys, "train", tiny_config, "--work-dir", work, *args).code == 0
    finally:
        os.umask(previous)
    for path in (work / "checkpoints" / "last.pth", work / "config.yaml", work / "log.jsonl"):
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_resume_says_that_config_is_not_reread(tmp_path, capsys, tiny_config, tiny_run):
    work = tmp_path / "run"
    shutil.copytree(tiny_run, work)
    result = run_cli(capsys, "train", tiny_config, "--work-dir", work, "--resume",
                     *overrides(schedule__max_iters=5))  # fmt: skip
    assert result.code == 0, result.err
    assert f"{tiny_config} is not re-read" in result.err_lines[0]
