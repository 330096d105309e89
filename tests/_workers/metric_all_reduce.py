"""One gloo rank of ``tests/metrics/test_distributed.py``: metrics on this rank's images.

Run as ``torchrun --nproc_per_node 2 metric_all_reduce.py OUT_DIR``. Rank 0 first computes
everything in one process (before joining the group: world size 1) into ``OUT_DIR/single.json``;
then every rank counts its share, all-reduces and writes ``OUT_DIR/rank<r>.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from aucseg.engine.evaluate import evaluate
from aucseg.metrics import ConfusionMatrix, PairwiseAUC

NUM_CLASSES = 5


def make_items() -> list[dict]:
    """Five images of different sizes with labels (10% ignored) in the evaluate() layout."""
    gen = torch.Generator().manual_seed(0)
    items = []
    for k in range(5):
        h, w = 12 + k, 10 + 2 * k
        label = torch.randint(0, NUM_CLASSES, (h, w), generator=gen)
        label[torch.rand(h, w, generator=gen) < 0.1] = 255
        image = torch.randn(3, h, w, generator=gen)
        items.append({"image": image, "label": label, "image_path": f"img{k}.png"})
    return items


def make_model() -> torch.nn.Module:
    """A seeded 1x1 convolution from RGB to class logits."""
    torch.manual_seed(0)
    return torch.nn.Conv2d(3, NUM_CLASSES, 1)


def count(items: list[dict], rank: int, world: int) -> tuple[ConfusionMatrix, PairwiseAUC]:
    """Confusion matrix and AUC histogram of seeded predictions on images ``rank::world``,
    all-reduced (a no-op outside a process group)."""
    cm, auc = ConfusionMatrix(NUM_CLASSES), PairwiseAUC(NUM_CLASSES, bins=20)
    for item in items[rank::world]:
        label = item["label"]
        pred = torch.randint(
            0, NUM_CLASSES, label.shape, generator=torch.Generator().manual_seed(7)
        )
        cm.update(pred, label)
        scores = torch.rand(
            1, NUM_CLASSES, *label.shape, generator=torch.Generator().manual_seed(8)
        )
        auc.update(scores, label[None])
    cm.all_reduce()
    auc.all_reduce()
    return cm, auc


def results(rank: int, world: int) -> dict:
    """Counted metrics of this rank's share and ``evaluate`` of the model on every image."""
    items = make_items()
    cm, auc = count(items, rank, world)
    names = [f"c{i}" for i in range(NUM_CLASSES)]
    evaluated = evaluate(make_model(), items, NUM_CLASSES, names, progress=False)
    return {"matrix": cm.matrix.tolist(), "hist": auc.hist.tolist(), "eval": evaluated}


def run(out_dir: Path) -> None:
    """Write the single-process results (rank 0), then join the group and write this rank's."""
    if int(os.environ["RANK"]) == 0:
        (out_dir / "single.json").write_text(json.dumps(results(0, 1)))
    dist.init_process_group("gloo")  # rank, world size and rendezvous from torchrun
    rank, world = dist.get_rank(), dist.get_world_size()
    (out_dir / f"rank{rank}.json").write_text(json.dumps(results(rank, world)))
    dist.destroy_process_group()


if __name__ == "__main__":
    run(Path(sys.argv[1]))
