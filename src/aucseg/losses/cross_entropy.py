"""Softmax cross-entropy with mmseg 0.24.1 averaging, optionally class-weighted."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from aucseg.losses._common import PixelLoss, float32_logits, per_class_tensor, pixel_mean
from aucseg.losses.class_weights import class_counts_tensor, class_weights_from_counts

__all__ = ["CrossEntropyLoss", "weighted_cross_entropy"]


def weighted_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    ignore_index: int,
    avg_non_ignore: bool,
) -> torch.Tensor:
    """``sum_valid w[y] * CE / denominator`` on validated inputs (mmseg 0.24.1 averaging).

    Args:
        logits: (B, C, H, W) raw scores (fp16/bf16 computed in fp32).
        target: (B, H, W) integer labels.
        weight: (C,) class weights, or None for 1.
        ignore_index: Label value to ignore (contributes 0).
        avg_non_ignore: Denominator: False, all B·H·W pixels; True, the valid pixels. Unlike
            ``torch.nn.functional.cross_entropy(weight=...)`` with ``reduction="mean"``, the
            denominator is a pixel count, never the sum of the weights.

    Returns:
        0-dim tensor (fp32 for fp16/bf16 logits).
    """
    x = float32_logits(logits)
    if weight is not None:
        weight = weight.to(device=x.device, dtype=x.dtype)
    total = F.cross_entropy(
        x, target.long(), weight=weight, ignore_index=ignore_index, reduction="sum"
    )
    return pixel_mean(total, target, ignore_index, avg_non_ignore)


def resolve_class_weight(
    class_weight: object, class_counts: object, num_classes: int, beta: float
) -> torch.Tensor | None:
    """The (C,) float32 weights for ``class_weight`` (None, a list, or a method name).

    Raises:
        InputError: a method name without ``class_counts`` (set ``data.class_groups``), an
            unknown method, or a list of the wrong length / with negative entries.
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        counts = class_counts_tensor(class_counts, num_classes, f"class_weight={class_weight!r}")
        return class_weights_from_counts(counts, class_weight, beta)
    return per_class_tensor(class_weight, num_classes, "class_weight").float()


class CrossEntropyLoss(PixelLoss):
    """Softmax cross-entropy, ignored pixels contribute 0 (mmseg 0.24.1 ``CrossEntropyLoss``).

    ``loss = sum_{valid i} w[y_i] * (-log softmax(z_i)[y_i]) / D`` with ``D`` = all B·H·W pixels
    (``avg_non_ignore=False``, mmseg's default) or the number of valid pixels (True). Weights
    multiply each pixel's term; the mean is over pixels, not normalised by the weights (as in
    mmseg, unlike ``torch.nn.CrossEntropyLoss(weight=...)``), so a weight scale changes the
    loss scale.

    Args:
        num_classes: Number of classes C (>= 1), checked against the logits' channels.
        loss_weight: Multiplies the result.
        ignore_index: Label value to ignore.
        avg_non_ignore: See above.
        class_weight: None (all 1), an explicit list of C weights >= 0 (used as given), or a
            method computing them from ``class_counts``: "inverse", "median", "enet" or
            "effective" (see :mod:`aucseg.losses.class_weights` for formulas and scales).
        class_counts: Per-class training pixel counts (the engine fills them from the
            ``aucseg stats`` file of ``data.class_groups``); needed by the methods.
        beta: Effective-number parameter of "effective", in [0, 1).

    Raises:
        InputError: a method without ``class_counts``, or invalid weights/counts/beta.

    Shape:
        forward(logits (B, C, H, W), target (B, H, W)) -> 0-dim tensor.
    """

    default_loss_name = "loss_ce"

    def __init__(
        self,
        num_classes: int,
        loss_weight: float = 1.0,
        ignore_index: int = 255,
        avg_non_ignore: bool = False,
        class_weight: list[float] | Literal["inverse", "median", "enet", "effective"] | None = None,
        class_counts: list[float] | None = None,
        beta: float = 0.999,
    ) -> None:
        super().__init__(num_classes, loss_weight, ignore_index)
        self.avg_non_ignore = bool(avg_non_ignore)
        self.class_weight_option = class_weight
        self.register_buffer(
            "class_weight",
            resolve_class_weight(class_weight, class_counts, self.num_classes, beta),
            persistent=False,
        )

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of validated inputs."""
        return weighted_cross_entropy(
            logits, target, self.class_weight, self.ignore_index, self.avg_non_ignore
        )

    def extra_repr(self) -> str:
        """Constructor arguments for ``print(module)``."""
        weight = (
            ""
            if self.class_weight_option is None
            else f", class_weight={self.class_weight_option!r}"
        )
        return f"{super().extra_repr()}, avg_non_ignore={self.avg_non_ignore}{weight}"
