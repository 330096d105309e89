"""Worker launched by test_distributed.py under torchrun: trains the stand-in for 3 steps.

Usage: torchrun --nproc_per_node 2 ddp_worker.py WORK_DIR POISON_RANK [WORK_DIR POISON_RANK ...]
(one run per pair, in the same process group; POISON_RANK -1 = no NaN).
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.engine.standins import CELoss, PoisonLoss
from tests.engine.test_trainer import make_trainer

from aucseg import dist
from aucseg.engine.trainer import NonFiniteLossError


def run(work_dir: str, poison_rank: int) -> None:
    rank = dist.get_rank()
    losses = [CELoss()]
    if poison_rank >= 0:
        losses.append(PoisonLoss(at=2 if rank == poison_rank else 10**9))
    trainer = make_trainer(work_dir, max_iters=3, losses=losses)
    try:
        trainer.train()
        status = "done"
    except NonFiniteLossError as exc:
        status = f"nan:{exc.term}:{exc.iteration}"
    params = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    torch.save({"params": params, "status": status}, Path(work_dir) / f"rank{rank}.pt")
    dist.barrier()


def main(pairs: list[str]) -> None:
    torch.set_num_threads(1)
    assert dist.init_distributed("gloo")
    try:
        for work_dir, poison_rank in zip(pairs[::2], pairs[1::2], strict=True):
            run(work_dir, int(poison_rank))
    finally:
        dist.cleanup()


if __name__ == "__main__":
    main(sys.argv[1:])
