"""One gloo rank of ``tests/losses/test_distributed.py``: synced losses and a DDP step.

Run as ``torchrun --nproc_per_node 2 synced_losses.py OUT_DIR``; rank ``r`` writes
``OUT_DIR/rank<r>.pt``. The test imports the batch and the variants from here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from aucseg.losses import build_loss

NUM_CLASSES = 5
VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "square_ovo": ("square_auc", {}),
    "square_ova_g05": ("square_auc", {"transform": "ova", "gamma": 0.5}),
    "exp_ovo": ("exp_auc", {}),
    "exp_ova": ("exp_auc", {"transform": "ova"}),
    "hinge_official_ovo": ("hinge_auc", {"form": "official"}),
    "hinge_official_ova": ("hinge_auc", {"form": "official", "transform": "ova"}),
}


def make_global_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits (4, C, 6, 7), labels (4, 6, 7) and images (4, 3, 6, 7) of the global batch.

    Class 4 occurs only in the second half and the first sample is mostly ignored, so the local
    and global class sets (and K) differ.
    """
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, NUM_CLASSES, 6, 7, generator=gen) * 2
    target = torch.randint(0, NUM_CLASSES - 1, (4, 6, 7), generator=gen)
    target[2:, :2] = NUM_CLASSES - 1
    target[0, 1:] = 255
    images = torch.randn(4, 3, 6, 7, generator=gen)
    return logits, target, images


def shard(rank: int, world_size: int, batch: int) -> slice:
    """Contiguous per-rank slice of the global batch."""
    per = batch // world_size
    return slice(rank * per, (rank + 1) * per)


def run(out_dir: Path) -> None:
    """Compute every variant with sync on, on the local shard, and save values and gradients.

    The variants switch sync on by attribute; the DDP step passes ``sync=True`` to the
    constructor, so both ways are checked against the global batch.
    """
    dist.init_process_group("gloo")  # rank, world size and rendezvous from torchrun
    rank, world = dist.get_rank(), dist.get_world_size()
    logits, target, images = make_global_batch()
    part = shard(rank, world, logits.shape[0])
    results: dict[str, torch.Tensor] = {}
    for key, (name, kwargs) in VARIANTS.items():
        z = logits[part].clone().requires_grad_()
        loss_fn = build_loss(name, NUM_CLASSES, **kwargs)
        loss_fn.sync = True  # switched on after construction, as the engine does
        loss = loss_fn(z, target[part])
        loss.backward()
        results[f"{key}_loss"] = loss.detach()
        results[f"{key}_grad"] = z.grad
    torch.manual_seed(0)
    model = nn.Conv2d(3, NUM_CLASSES, 1)
    ddp = DistributedDataParallel(model)
    loss = build_loss("square_auc", NUM_CLASSES, sync=True)(ddp(images[part]), target[part])
    loss.backward()
    results["ddp_weight_grad"] = model.weight.grad
    results["ddp_bias_grad"] = model.bias.grad
    torch.save(results, out_dir / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    run(Path(sys.argv[1]))
