"""sync=True under 2 gloo processes equals the single-process loss on the concatenated batch."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from aucseg.losses import build_loss

WORLD_SIZE = 2
WORKER = Path(__file__).with_name("_dist_worker.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def load_worker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aucseg_losses_dist_worker", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, torch.Tensor]]:
    out = tmp_path_factory.mktemp("dist")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(WORLD_SIZE),
        OMP_NUM_THREADS="1",
    )  # fmt: skip
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(out)],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(WORLD_SIZE)
    ]
    logs = [proc.communicate(timeout=180)[0] for proc in procs]
    for rank, proc in enumerate(procs):
        assert proc.returncode == 0, f"rank {rank} failed:\n{logs[rank]}"
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]


@pytest.mark.distributed
@pytest.mark.parametrize("key", list(load_worker().VARIANTS))
def test_synced_loss_equals_global_batch_loss(
    rank_results: list[dict[str, torch.Tensor]], key: str
) -> None:
    worker = load_worker()
    name, kwargs = worker.VARIANTS[key]
    logits, target, _ = worker.make_global_batch()
    x = logits.clone().requires_grad_()
    loss = build_loss(name, worker.NUM_CLASSES, **kwargs)(x, target)
    loss.backward()
    for rank, result in enumerate(rank_results):
        part = worker.shard(rank, WORLD_SIZE, logits.shape[0])
        torch.testing.assert_close(result[f"{key}_loss"], loss.detach(), rtol=1e-5, atol=1e-7)
        # DDP averages over ranks, so each rank carries world_size x its global-batch gradient.
        torch.testing.assert_close(
            result[f"{key}_grad"], WORLD_SIZE * x.grad[part], rtol=1e-4, atol=1e-8
        )


@pytest.mark.distributed
def test_ddp_gradient_equals_global_batch_gradient(
    rank_results: list[dict[str, torch.Tensor]],
) -> None:
    worker = load_worker()
    _, target, images = worker.make_global_batch()
    torch.manual_seed(0)
    model = nn.Conv2d(3, worker.NUM_CLASSES, 1)
    build_loss("square_auc", worker.NUM_CLASSES)(model(images), target).backward()
    for result in rank_results:
        for param in ("weight", "bias"):
            expected = getattr(model, param).grad
            torch.testing.assert_close(result[f"ddp_{param}_grad"], expected, rtol=1e-4, atol=1e-8)


@pytest.mark.distributed
def test_local_loss_differs_from_global(rank_results: list[dict[str, torch.Tensor]]) -> None:
    """Guard against a vacuous test: without sync each rank would see a different loss."""
    worker = load_worker()
    logits, target, _ = worker.make_global_batch()
    part = worker.shard(0, WORLD_SIZE, logits.shape[0])
    local = build_loss("square_auc", worker.NUM_CLASSES)(logits[part], target[part])
    assert abs(local.item() - rank_results[0]["square_ovo_loss"].item()) > 1e-3
