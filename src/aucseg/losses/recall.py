"""Recall loss (Tian, Mithun, Seymour, Chiu, Kira, "Striking the Right Balance: Recall Loss for
Semantic Segmentation", arXiv:2106.14917, 2021; ICRA 2022).

Cross-entropy with each pixel weighted by ``1 - R_c`` of its class, the recall of the current
batch: ``R_c = TP_c / (TP_c + FN_c)`` over the valid pixels labelled c, with the argmax of the
logits as prediction. ``loss = sum_{valid i} (1 - R_{y_i}) (-log p_{i, y_i}) / D``, D as in
:class:`~aucseg.losses.CrossEntropyLoss` (all B·H·W pixels, or the valid ones with
``avg_non_ignore``; the authors' code averages over all pixels). The weights are statistics of
the batch, constants for autograd. ``1 - R_c = FN_c / (number of pixels of class c)``; the
authors' code starts both counters at 1, which gives a class with no false negative the weight
``1 / count`` instead of 0; here the weight is exactly ``1 - R_c``. Counting uses
``scatter_add`` on the device (no host sync).
"""

from __future__ import annotations

import torch

from aucseg.losses._common import PixelLoss, float32_logits
from aucseg.losses.cross_entropy import weighted_cross_entropy
from aucseg.losses.validation import validate_inputs

__all__ = ["RecallLoss", "batch_miss_rate", "recall_loss"]


def batch_miss_rate(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Per-class ``1 - recall`` of ``argmax(logits)`` on the valid pixels (0 for absent classes).

    Shape:
        logits (B, C, H, W), target (B, H, W) -> (C,) of the logits' fp32/fp64 dtype, detached.
    """
    num_classes = logits.shape[1]
    dtype = float32_logits(logits).dtype
    labels = target.reshape(-1).long()
    valid = labels != ignore_index
    # ignored pixels go to an extra bucket C that is dropped
    bucket = torch.where(valid, labels, num_classes)
    missed = (logits.detach().argmax(1).reshape(-1) != labels).to(dtype)
    zeros = torch.zeros(num_classes + 1, dtype=dtype, device=logits.device)
    counts = zeros.scatter_add(0, bucket, torch.ones_like(missed))[:num_classes]
    misses = zeros.scatter_add(0, bucket, missed)[:num_classes]
    return misses / counts.clamp(min=1.0)


def compute_recall(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, avg_non_ignore: bool
) -> torch.Tensor:
    """:func:`recall_loss` on validated inputs."""
    weight = batch_miss_rate(logits, target, ignore_index)
    return weighted_cross_entropy(logits, target, weight, ignore_index, avg_non_ignore)


def recall_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int = 255,
    avg_non_ignore: bool = False,
) -> torch.Tensor:
    """Recall-weighted cross-entropy (see the module docstring).

    Args:
        logits: Raw scores (fp16/bf16 computed in fp32).
        target: Integer labels.
        ignore_index: Label value to ignore (not counted, contributes 0).
        avg_non_ignore: False: sum / all B·H·W pixels; True: / valid pixels.

    Returns:
        0-dim tensor.

    Shape:
        logits (B, C, H, W), target (B, H, W).
    """
    validate_inputs(logits, target, None, ignore_index)
    return compute_recall(logits, target, ignore_index, avg_non_ignore)


class RecallLoss(PixelLoss):
    """Recall loss (Tian et al., 2021), ``loss_name="loss_recall"``.

    Args:
        num_classes: Number of classes C (>= 1).
        loss_weight: Multiplies the result.
        ignore_index: Label value to ignore.
        avg_non_ignore: False: sum / all B·H·W pixels (mmseg default); True: / valid pixels.

    Shape:
        forward(logits (B, C, H, W), target (B, H, W)) -> 0-dim tensor.
    """

    default_loss_name = "loss_recall"

    def __init__(
        self,
        num_classes: int,
        loss_weight: float = 1.0,
        ignore_index: int = 255,
        avg_non_ignore: bool = False,
    ) -> None:
        super().__init__(num_classes, loss_weight, ignore_index)
        self.avg_non_ignore = bool(avg_non_ignore)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Recall loss of validated inputs."""
        return compute_recall(logits, target, self.ignore_index, self.avg_non_ignore)

    def extra_repr(self) -> str:
        """Constructor arguments for ``print(module)``."""
        return f"{super().extra_repr()}, avg_non_ignore={self.avg_non_ignore}"
