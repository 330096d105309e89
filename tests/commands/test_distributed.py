"""Distributed training through the real command line: 2 gloo processes on the CPU.

Every run launches the installed entry point itself, ``torchrun ... -m aucseg train``, through
the suite's one launcher (``tests/conftest.py``): one node with two processes, or two
single-process nodes rendezvousing on a local port. There are no worker scripts; what a rank
does is what ``aucseg train`` does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ..conftest import Launch, torchrun
from .conftest import (
    checkpoint,
    log_records,
    overrides,
    small_config,
    subprocess_env,
    write_config,
)

pytestmark = pytest.mark.distributed


def _train(work: Path, *argv, nproc: int = 2, nnodes: int = 1, check: bool = True) -> Launch:
    """``torchrun -m aucseg train ARGV --work-dir WORK`` on ``nnodes`` x ``nproc`` processes;
    unless ``check`` is false, every launcher must exit 0. A retry starts in a clean work dir."""
    return torchrun(
        "-m", "aucseg", "train", *argv, "--work-dir", work,
        nproc=nproc, nnodes=nnodes, env=subprocess_env(), clean=work, check=check,
    )  # fmt: skip


@pytest.fixture(scope="module")
def auc_config(tmp_path_factory, synthetic) -> Path:
    """Square AUC + CE on the external model: 2 iterations, evaluation and a checkpoint at 2."""
    terms = [{"name": "square_auc"}, {"name": "cross_entropy"}]
    cfg = small_config(synthetic, loss={"terms": terms}, schedule={"max_iters": 2})
    return write_config(tmp_path_factory.mktemp("ddp") / "auc.yaml", cfg)


@pytest.mark.parametrize("form", ["pairwise", "official"])
def test_torchrun_two_processes_train_hinge_auc(form, tmp_path, auc_config):
    work = tmp_path / "run"
    args = overrides(loss__terms__0__name="hinge_auc")  # pairwise: the default form
    if form == "official":
        args.append("loss.terms.0.form=official")
    result = _train(work, auc_config, *args)
    state = checkpoint(work / "checkpoints" / "last.pth")
    assert state["iteration"] == 2 and state["meta"]["world_size"] == 2
    assert state["config"]["loss"]["terms"][0]["form"] == form
    resolved = yaml.safe_load((work / "config.yaml").read_text())
    assert resolved["loss"]["terms"][0]["name"] == "hinge_auc"
    assert resolved["loss"]["terms"][0]["form"] == form
    # pairwise has no exact global-batch form: one note line says so (rank 0 only), with the
    # cross-entropy term; official runs on the global batch and is not named
    notes = [line for line in result.err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1, result.err[-3000:]
    named = "loss.terms.0 (hinge_auc) has no exact distributed mode" in notes[0]
    assert named == (form == "pairwise"), notes[0]


def test_nan_on_one_rank_stops_every_rank(tmp_path, auc_config):
    work = tmp_path / "run"
    args = overrides(model__poison_rank=1, model__poison_step=2, runtime__checkpoint_interval=1,
                     schedule__max_iters=4, evaluation__interval=0)  # fmt: skip
    result = _train(work, auc_config, *args, check=False)
    assert result.code != 0
    # both ranks stop at the same iteration, and neither hangs (their lines may interleave)
    assert result.err.count("became non-finite at iteration 2;") == 2, result.err[-3000:]
    assert checkpoint(work / "checkpoints" / "last.pth")["iteration"] == 1


def test_two_nodes_train_evaluate_and_checkpoint(tmp_path, auc_config):
    work = tmp_path / "run"
    _train(work, auc_config, nproc=1, nnodes=2)  # both launchers exit 0
    state = checkpoint(work / "checkpoints" / "last.pth")
    assert state["iteration"] == 2 and state["meta"]["world_size"] == 2
    val = log_records(work, "val")
    assert [r["iter"] for r in val] == [2] and val[0]["num_images"] == 4
    assert 0.0 <= val[0]["mIoU"] <= 100.0
