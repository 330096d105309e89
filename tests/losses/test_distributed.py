"""sync=True under 2 gloo processes equals the single-process loss on the concatenated batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aucseg.losses import build_loss

from ..conftest import load_worker, torchrun, worker

WORLD_SIZE = 2
WORKER = load_worker("synced_losses")


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, torch.Tensor]]:
    out = tmp_path_factory.mktemp("dist")
    torchrun(worker("synced_losses"), out, nproc=WORLD_SIZE, timeout=180)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]


@pytest.mark.distributed
@pytest.mark.parametrize("key", list(WORKER.VARIANTS))
def test_synced_loss_equals_global_batch_loss(
    rank_results: list[dict[str, torch.Tensor]], key: str
) -> None:
    name, kwargs = WORKER.VARIANTS[key]
    logits, target, _ = WORKER.make_global_batch()
    x = logits.clone().requires_grad_()
    loss = build_loss(name, WORKER.NUM_CLASSES, **kwargs)(x, target)
    loss.backward()
    for rank, result in enumerate(rank_results):
        part = WORKER.shard(rank, WORLD_SIZE, logits.shape[0])
        torch.testing.assert_close(result[f"{key}_loss"], loss.detach(), rtol=1e-5, atol=1e-7)
        # DDP averages over ranks, so each rank carries world_size x its global-batch gradient.
        torch.testing.assert_close(
            result[f"{key}_grad"], WORLD_SIZE * x.grad[part], rtol=1e-4, atol=1e-8
        )


@pytest.mark.distributed
def test_ddp_gradient_equals_global_batch_gradient(
    rank_results: list[dict[str, torch.Tensor]],
) -> None:
    _, target, images = WORKER.make_global_batch()
    torch.manual_seed(0)
    model = nn.Conv2d(3, WORKER.NUM_CLASSES, 1)
    build_loss("square_auc", WORKER.NUM_CLASSES)(model(images), target).backward()
    for result in rank_results:
        for param in ("weight", "bias"):
            expected = getattr(model, param).grad
            torch.testing.assert_close(result[f"ddp_{param}_grad"], expected, rtol=1e-4, atol=1e-8)


@pytest.mark.distributed
def test_local_loss_differs_from_global(rank_results: list[dict[str, torch.Tensor]]) -> None:
    """Guard against a vacuous test: without sync each rank would see a different loss."""
    logits, target, _ = WORKER.make_global_batch()
    part = WORKER.shard(0, WORLD_SIZE, logits.shape[0])
    local = build_loss("square_auc", WORKER.NUM_CLASSES)(logits[part], target[part])
    assert abs(local.item() - rank_results[0]["square_ovo_loss"].item()) > 1e-3
