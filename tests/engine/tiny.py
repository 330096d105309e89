"""Tiny real objects for the engine tests: a 2-layer conv segmentor, an in-memory dataset
with random augmentation, and losses that turn non-finite on cue."""

from __future__ import annotations

import os
import random
import signal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 4


class TinyNet(nn.Module):
    """``(B,3,H,W) -> (B,C,H,W)`` logits at input size; parameter names as in a segmentor
    (``backbone.*`` with a ``norm``, ``decode_head.*``) so the official groups apply."""

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 8) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = nn.Module()
        self.backbone.conv = nn.Conv2d(3, width, 3, padding=1)
        self.backbone.norm = nn.GroupNorm(2, width)  # batch-independent: accumulation is exact
        self.decode_head = nn.Module()
        self.decode_head.conv_seg = nn.Conv2d(width, num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.backbone.norm(self.backbone.conv(images)))
        return self.decode_head.conv_seg(x)


class TinyScenes(torch.utils.data.Dataset):
    """Fixed images whose labels follow the red channel; each item is randomly flipped and
    shifted with the Python and NumPy RNGs (no tensor branching, so no host reads)."""

    def __init__(self, n: int = 10, size: int = 12, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, NUM_CLASSES, (n, size, size), generator=gen)
        self.labels[:, 0, :3] = 255
        noise = 0.3 * torch.randn(n, 3, size, size, generator=gen)
        self.images = noise + self.labels.clamp(max=NUM_CLASSES - 1)[:, None].float()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image, label = self.images[i].clone(), self.labels[i].clone()
        if random.random() < 0.5:
            image, label = image.flip(-1), label.flip(-1)
        shift = int(np.random.randint(0, 3))
        image = torch.roll(image, shift, dims=-2) + 0.01 * torch.randn(image.shape)
        return {"image": image, "label": torch.roll(label, shift, dims=-2)}


class CountingLoss(nn.Module):
    """Cross-entropy (mmseg reduction) that counts its calls; subclasses act at call ``at``."""

    loss_name = "loss_ce"
    ignore_index = 255

    def __init__(self, at: int = 0, loss_name: str | None = None) -> None:
        super().__init__()
        self.at, self.calls = at, 0
        if loss_name is not None:
            self.loss_name = loss_name

    def ce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, ignore_index=255, reduction="none").mean()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.ce(logits, target)


class NaNFrom(CountingLoss):
    """NaN from call ``at`` on (or only at call ``at`` with ``once=True``)."""

    loss_name = "loss_poison"

    def __init__(self, at: int, once: bool = False) -> None:
        super().__init__(at)
        self.once = once

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = super().forward(logits, target) * 1e-3
        bad = self.calls == self.at if self.once else self.calls >= self.at
        return value * float("nan") if bad else value


class _NaNGradient(torch.autograd.Function):
    """Identity forward; NaN gradient backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad * float("nan")


class NaNGradientAt(CountingLoss):
    """A finite value at every call; at call ``at`` its backward yields a NaN gradient."""

    loss_name = "loss_grad_poison"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = super().forward(logits, target)
        return _NaNGradient.apply(value) if self.calls == self.at else value


class SigintAt(CountingLoss):
    """Sends SIGINT to this process from inside the step at call ``at`` (a user's Ctrl-C)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = super().forward(logits, target)
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return value


class NaNValueAt(CountingLoss):
    """At call ``at`` the value is NaN while the gradient stays finite (a detached NaN)."""

    loss_name = "loss_value_poison"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = super().forward(logits, target)
        return value + torch.tensor(float("nan")) if self.calls == self.at else value
