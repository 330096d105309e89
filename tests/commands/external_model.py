"""A small segmentation network that the command tests build by import path.

A config names it ``model.name: external_model:make`` with this folder on ``PYTHONPATH``
(subprocesses) or ``sys.path`` (in-process runs), as a user's own model would be. It returns
``{"out": logits}`` at half the input size, so the engine's adapter has to extract and
upsample them. Two options make runs controllable from a config: ``delay`` slows every
training forward (signals can arrive mid-run), ``poison_rank``/``poison_step`` return NaN
logits on one rank at one training step.
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist
from torch import nn


class TinyNet(nn.Module):
    """conv3x3 (stride 2), BatchNorm, ReLU, conv1x1: ``(B,3,H,W) -> {"out": (B,C,H/2,W/2)}``."""

    def __init__(
        self, num_classes: int, width: int, delay: float, poison_rank: int, poison_step: int
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.delay, self.poison_rank, self.poison_step = delay, poison_rank, poison_step
        self.steps = 0

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.classifier(self.body(images))
        if self.training:
            self.steps += 1
            time.sleep(self.delay)
            rank = dist.get_rank() if dist.is_initialized() else 0
            if rank == self.poison_rank and self.steps == self.poison_step:
                logits = logits * float("nan")
        return {"out": logits}


def make(
    num_classes: int,
    width: int = 8,
    delay: float = 0.0,
    poison_rank: int = -1,
    poison_step: int = 0,
) -> nn.Module:
    """The factory a config names as ``external_model:make``.

    Args:
        num_classes: classes to predict (given by aucseg).
        width: hidden channels.
        delay: seconds each training forward sleeps.
        poison_rank: rank whose logits become NaN at ``poison_step`` (-1: never).
        poison_step: 1-based training forward count at which that happens.
    """
    return TinyNet(num_classes, width, delay, poison_rank, poison_step)
