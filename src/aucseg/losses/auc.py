"""AUC loss modules: ``SquareAUCLoss``, ``HingeAUCLoss``, ``ExpAUCLoss``."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from aucseg.losses.functional import HingeForm, Transform, check_options, compute_auc_loss
from aucseg.losses.validation import validate_inputs

__all__ = ["AUCLoss", "ExpAUCLoss", "HingeAUCLoss", "SquareAUCLoss"]


def check_num_classes(num_classes: object, minimum: int, hint: str = "") -> int:
    """Return ``num_classes`` as int; TypeError/ValueError unless it is an int >= ``minimum``."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(
            f"num_classes must be an int, got {type(num_classes).__name__} {num_classes!r}"
        )
    if num_classes < minimum:
        raise ValueError(f"num_classes must be >= {minimum}, got {num_classes}{hint}")
    return num_classes


def check_loss_weight(loss_weight: object) -> float:
    """Return ``loss_weight`` as float, or raise if it is not a finite real number."""
    if isinstance(loss_weight, bool) or not isinstance(loss_weight, (int, float)):
        raise TypeError(
            f"loss_weight must be a real number, got {type(loss_weight).__name__} {loss_weight!r}"
        )
    if not math.isfinite(loss_weight):
        raise ValueError(f"loss_weight must be finite, got {loss_weight}")
    return float(loss_weight)


def check_ignore_index(ignore_index: object) -> int:
    """Return ``ignore_index``, or raise TypeError unless it is an int (not a bool)."""
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(
            f"ignore_index must be an int, got {type(ignore_index).__name__} {ignore_index!r}"
        )
    return ignore_index


class AUCLoss(nn.Module):
    """Base of the pixel-level AUC losses; subclasses fix ``surrogate`` and ``loss_name``.

    Args:
        num_classes: Number of classes C (>= 2; C = 2 is binary segmentation).
        gamma: Margin (> 0).
        transform: "ovo" (mean over the K(K-1) ordered present-class pairs, K = classes present
            in the batch after ignore) or "ova" (sum over present classes, not averaged).
        loss_weight: Multiplies the result.
        ignore_index: Label value whose pixels are dropped.
        sync: Exact global-batch loss under ``torch.distributed`` (see :func:`auc_loss`);
            without a process group the local loss.
        form: Hinge only, "pairwise" or "official" (see :class:`HingeAUCLoss`); the square and
            exp subclasses do not take it.

    Shape:
        forward(logits (B, C, H, W), target (B, H, W)) -> 0-dim tensor. Logits may be fp16,
        bf16, fp32 or fp64; statistics are accumulated in fp32 (fp64 for fp64 logits).
    """

    surrogate: ClassVar[str] = "square"
    default_loss_name: ClassVar[str] = "loss_auc"

    def __init__(
        self,
        num_classes: int,
        gamma: float = 1.0,
        transform: Transform = "ovo",
        loss_weight: float = 1.0,
        ignore_index: int = 255,
        sync: bool = False,
        form: HingeForm = "pairwise",
    ) -> None:
        super().__init__()
        self.num_classes = check_num_classes(
            num_classes, 2, "; AUC ranks one class against another, so binary segmentation "
            "needs a background class (num_classes=2)",
        )  # fmt: skip
        check_options(self.surrogate, transform, form, gamma, sync)
        self.gamma = float(gamma)
        self.transform = transform
        self.loss_weight = check_loss_weight(loss_weight)
        self.ignore_index = check_ignore_index(ignore_index)
        self.sync = sync
        self.form = form
        self.loss_name = self.default_loss_name

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of ``logits`` (B, C, H, W) against ``target`` (B, H, W), times ``loss_weight``."""
        validate_inputs(logits, target, self.num_classes, self.ignore_index)
        loss = compute_auc_loss(
            logits, target, self.surrogate, self.gamma, self.transform, self.ignore_index,
            self.sync, self.form,
        )  # fmt: skip
        return loss * self.loss_weight

    def extra_repr(self) -> str:
        """Constructor arguments for ``print(module)``."""
        return (
            f"num_classes={self.num_classes}, gamma={self.gamma}, transform={self.transform!r}, "
            f"loss_weight={self.loss_weight}, ignore_index={self.ignore_index}, sync={self.sync}"
        )


class SquareAUCLoss(AUCLoss):
    """Square surrogate: ½ mean_pairs (gamma - (p_pos - p_neg))^2, exactly as the official code.

    See :class:`AUCLoss` for arguments and shapes.
    """

    surrogate = "square"
    default_loss_name = "loss_square_auc"

    def __init__(
        self,
        num_classes: int,
        gamma: float = 1.0,
        transform: Transform = "ovo",
        loss_weight: float = 1.0,
        ignore_index: int = 255,
        sync: bool = False,
    ) -> None:
        super().__init__(num_classes, gamma, transform, loss_weight, ignore_index, sync)


class ExpAUCLoss(AUCLoss):
    """Exponential surrogate: mean_pairs exp(-gamma (p_pos - p_neg)), as the official code.

    See :class:`AUCLoss` for arguments and shapes.
    """

    surrogate = "exp"
    default_loss_name = "loss_exp_auc"

    def __init__(
        self,
        num_classes: int,
        gamma: float = 1.0,
        transform: Transform = "ovo",
        loss_weight: float = 1.0,
        ignore_index: int = 255,
        sync: bool = False,
    ) -> None:
        super().__init__(num_classes, gamma, transform, loss_weight, ignore_index, sync)


class HingeAUCLoss(AUCLoss):
    """Hinge surrogate.

    ``form="pairwise"`` (default): the true hinge, mean_pairs max(0, gamma - (p_pos - p_neg)),
    exact via per-class sorting; not available with ``sync=True``. ``form="official"``: the
    reference implementation's linear formula (no clamp, negatives scaled by an extra 1/N_i),
    kept to reproduce published numbers; supports ``sync=True``.

    See :class:`AUCLoss` for the other arguments and shapes.
    """

    surrogate = "hinge"
    default_loss_name = "loss_hinge_auc"

    def extra_repr(self) -> str:
        """Constructor arguments for ``print(module)``."""
        return f"{super().extra_repr()}, form={self.form!r}"
