"""Small stand-ins with the interfaces the engine relies on (segmentor, losses, datasets)."""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class TinyBackbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        # stem named like MSCAN's: patch_embed1.proj.{0,1} (conv, BN) keeps weight decay
        self.patch_embed1 = nn.Module()
        self.patch_embed1.proj = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.block1 = nn.ModuleList([nn.Module()])
        self.block1[0].norm1 = nn.BatchNorm2d(8)
        self.block1[0].conv = nn.Conv2d(8, 8, 3, padding=1)
        self.block1[0].layer_scale_1 = nn.Parameter(torch.full((8,), 0.01))
        self.norm1 = nn.GroupNorm(1, 8)  # stands for the stage LayerNorm
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.patch_embed1.proj(x))
        b = self.block1[0]
        x = x + b.layer_scale_1.view(1, -1, 1, 1) * b.conv(b.norm1(x))
        return self.drop(self.norm1(x))


class TinyHead(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(8, 8, 1)
        self.norm = nn.GroupNorm(2, 8)  # "norm" inside the head: the "head" key wins (lr x10)
        self.conv_seg = nn.Conv2d(8, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_seg(F.relu(self.norm(self.squeeze(x))))


class TinySegmentor(nn.Module):
    """``(B,3,H,W) -> (B,C,H,W)`` logits with ``backbone``/``decode_head``/``num_classes``."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = TinyBackbone()
        self.decode_head = TinyHead(num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode_head(self.backbone(images))


class CELoss(nn.Module):
    """mmseg-style CE: sum over valid pixels divided by all pixels, times ``loss_weight``."""

    def __init__(self, loss_weight: float = 1.0, ignore_index: int = 255) -> None:
        super().__init__()
        self.loss_weight, self.ignore_index = loss_weight, ignore_index
        self.loss_name = "loss_ce"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none")
        return self.loss_weight * loss.mean()


class PoisonLoss(nn.Module):
    """Finite until iteration ``at`` (counted by calls), then NaN."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.calls = at, 0
        self.loss_name = "loss_poison"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        value = logits.float().pow(2).mean() * 1e-3
        return value * float("nan") if self.calls > self.at else value


class RandomCropDataset(torch.utils.data.Dataset):
    """Fixed tensors; each item is randomly flipped/shifted with Python/NumPy/torch RNGs."""

    def __init__(self, n: int = 10, size: int = 16, num_classes: int = 4, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 3, size, size, generator=gen)
        self.labels = torch.randint(0, num_classes, (n, size, size), generator=gen)
        self.labels[:, :2] = 255

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        img, lab = self.images[i].clone(), self.labels[i].clone()
        if random.random() < 0.5:
            img, lab = img.flip(-1), lab.flip(-1)
        shift = int(np.random.randint(0, 3))
        img = torch.roll(img, shift, dims=-2) + 0.01 * torch.randn_like(img)
        return {"image": img, "label": torch.roll(lab, shift, dims=-2)}
