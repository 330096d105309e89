"""Segmentation networks defined outside aucseg, built by import path (``external_models:make``).

The tests put this folder on ``sys.path`` (``monkeypatch.syspath_prepend``), as a user puts the
folder of their own models on ``PYTHONPATH``.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

NOT_CALLABLE = 3


class TinyStride4(nn.Module):
    """Conv stride 4 -> BN -> ReLU -> 1x1 classifier; returns ``{"out": logits, "aux": ...}``."""

    def __init__(self, num_classes: int, width: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, stride=4, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = torch.relu(self.bn(self.stem(images)))
        return {"aux": feats, "out": self.classifier(feats)}


class LogitsAttribute(TinyStride4):
    """Returns an object with a ``.logits`` attribute, as Hugging Face models do."""

    def forward(self, images: torch.Tensor) -> SimpleNamespace:  # type: ignore[override]
        return SimpleNamespace(logits=super().forward(images)["out"], loss=None)


def make(num_classes: int, width: int = 8) -> nn.Module:
    """Logits at stride 4 inside a dict."""
    return TinyStride4(num_classes, width)


def make_logits_attribute(num_classes: int) -> nn.Module:
    """Logits at stride 4 as ``output.logits``."""
    return LogitsAttribute(num_classes, 4)


def make_ignoring_classes(num_classes: int) -> nn.Module:
    """A factory that ignores ``num_classes`` (always 3 outputs)."""
    return TinyStride4(3, 4)


def make_without_classes(width: int = 4) -> nn.Module:
    """A factory that takes no ``num_classes``."""
    return TinyStride4(3, width)


def make_not_a_module(num_classes: int) -> object:
    """A factory that returns no ``nn.Module``."""
    return [num_classes]
