"""Two gloo processes on CPU under torchrun: DDP, rank-0-only checkpoints, NaN agreement."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.distributed, pytest.mark.slow]
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One torchrun launch, two runs: plain, and with a NaN on rank 1 at iteration 2."""
    plain, poisoned = tmp_path_factory.mktemp("plain"), tmp_path_factory.mktemp("poisoned")
    _launch([str(plain), "-1", str(poisoned), "1"])
    return plain, poisoned


def _results(work_dir):
    return [torch.load(work_dir / f"rank{r}.pt", weights_only=True) for r in range(2)]


def _launch(args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(HERE / "ddp_worker.py"), *args]  # fmt: skip
    errors = []
    for _ in range(2):  # one retry: torchrun's rendezvous on a loaded 2-core machine can fail
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode == 0:
            return
        errors.append(proc.stderr[-3000:])
    pytest.fail("torchrun failed twice:\n" + "\n----\n".join(errors))


def test_ddp_ranks_agree_and_rank0_writes(runs):
    tmp_path = runs[0]
    r0, r1 = _results(tmp_path)
    assert r0["status"] == r1["status"] == "done"
    assert torch.equal(r0["params"], r1["params"])  # DDP keeps the replicas identical
    ckpt = torch.load(tmp_path / "checkpoints" / "last.pth", weights_only=True)
    assert ckpt["iteration"] == 3 and ckpt["meta"]["world_size"] == 2
    assert not list(tmp_path.glob("checkpoints/*.tmp"))


def test_nan_on_one_rank_stops_every_rank(runs):
    r0, r1 = _results(runs[1])
    assert r0["status"] == r1["status"] == "nan:loss_poison:2"
