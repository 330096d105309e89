"""Softmax cross-entropy with mmseg 0.24.1 averaging."""

from __future__ import annotations

import torch
from torch import nn

from aucseg.losses.auc import check_ignore_index, check_loss_weight, check_num_classes
from aucseg.losses.functional import compute_cross_entropy
from aucseg.losses.validation import validate_inputs

__all__ = ["CrossEntropyLoss"]


class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy, ignored pixels contribute 0.

    Args:
        num_classes: Number of classes C (>= 1), checked against the logits' channels.
        loss_weight: Multiplies the result.
        ignore_index: Label value to ignore.
        avg_non_ignore: False (mmseg default): sum over valid pixels / all B·H·W pixels;
            True: / number of valid pixels.

    Shape:
        forward(logits (B, C, H, W), target (B, H, W)) -> 0-dim tensor.
    """

    def __init__(
        self,
        num_classes: int,
        loss_weight: float = 1.0,
        ignore_index: int = 255,
        avg_non_ignore: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = check_num_classes(num_classes, 1)
        self.loss_weight = check_loss_weight(loss_weight)
        self.ignore_index = check_ignore_index(ignore_index)
        self.avg_non_ignore = bool(avg_non_ignore)
        self.loss_name = "loss_ce"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of ``logits`` against ``target``, times ``loss_weight``."""
        validate_inputs(logits, target, self.num_classes, self.ignore_index)
        loss = compute_cross_entropy(logits, target, self.ignore_index, self.avg_non_ignore)
        return loss * self.loss_weight

    def extra_repr(self) -> str:
        """Constructor arguments for ``print(module)``."""
        return (
            f"num_classes={self.num_classes}, loss_weight={self.loss_weight}, "
            f"ignore_index={self.ignore_index}, avg_non_ignore={self.avg_non_ignore}"
        )
