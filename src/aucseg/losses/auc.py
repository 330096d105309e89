"""AUC loss modules: ``SquareAUCLoss``, ``HingeAUCLoss``, ``ExpAUCLoss`` (AUCSeg, Han et al. 2024).

The losses of AUCSeg (Han et al., "AUCSeg: AUC-oriented Pixel-level Long-tail Semantic
Segmentation", NeurIPS 2024); the math lives in :mod:`aucseg.losses.functional`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import nn

from aucseg.losses.functional import compute_auc_loss
from aucseg.losses.validation import (
    PAIRWISE_SYNC_REASON,
    Surrogate,
    check_ignore_index,
    check_loss_weight,
    check_num_classes,
    check_options,
    check_sync,
    validate_inputs,
)

__all__ = ["AUCLoss", "ExpAUCLoss", "HingeAUCLoss", "SquareAUCLoss"]

_NUM_CLASSES_HINT = (
    "; AUC ranks one class against another, so binary segmentation needs a background class "
    "(num_classes=2)"
)


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
            without a process group the local loss. May also be set after construction,
            ``loss.sync = True``, where ``loss.supports_sync`` is True.

    Attributes:
        supports_sync: True when the loss has an exact distributed (global-batch) mode, which
            ``sync = True`` switches on. True for the square and exp losses.
        loss_name: Name for logging, e.g. ``"loss_square_auc"``.

    Shape:
        forward(logits (B, C, H, W), target (B, H, W)) -> 0-dim tensor. Logits may be fp16,
        bf16, fp32 or fp64; statistics are accumulated in fp32 (fp64 for fp64 logits). An
        empty batch (B, H or W = 0) gives 0 with a zero gradient.
    """

    surrogate: ClassVar[Surrogate]
    default_loss_name: ClassVar[str]
    supports_sync: bool = True

    def __init__(
        self,
        num_classes: int,
        gamma: float = 1.0,
        transform: Literal["ovo", "ova"] = "ovo",
        loss_weight: float = 1.0,
        ignore_index: int = 255,
        sync: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = check_num_classes(num_classes, 2, _NUM_CLASSES_HINT)
        check_options(self.surrogate, transform, gamma)
        self.gamma = float(gamma)
        self.transform = transform
        self.loss_weight = check_loss_weight(loss_weight)
        self.ignore_index = check_ignore_index(ignore_index)
        self.sync = sync
        self.loss_name = self.default_loss_name

    @property
    def sync(self) -> bool:
        """Whether the loss is computed on the global batch (see the class docstring)."""
        return self._sync

    @sync.setter
    def sync(self, value: bool) -> None:
        """Switch the global-batch mode; InputError where ``supports_sync`` is False."""
        supported = value is not True or self.supports_sync  # only consulted to switch on
        self._sync = check_sync(value, supported, type(self).__name__, self._sync_reason())

    def _sync_reason(self) -> str:
        """Why ``sync=True`` is unsupported, and the fix (used only when it is)."""
        return "it has no exact distributed mode; use sync=False"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of ``logits`` (B, C, H, W) against ``target`` (B, H, W), times ``loss_weight``."""
        validate_inputs(logits, target, self.num_classes, self.ignore_index)
        return self._compute(logits, target) * self.loss_weight

    def _compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The unweighted loss of checked inputs."""
        return compute_auc_loss(
            logits, target, self.surrogate, self.gamma, self.transform, self.ignore_index,
            self.sync,
        )  # fmt: skip

    def extra_repr(self) -> str:
        """Constructor arguments for ``print(module)``."""
        return (
            f"num_classes={self.num_classes}, gamma={self.gamma}, transform={self.transform!r}, "
            f"loss_weight={self.loss_weight}, ignore_index={self.ignore_index}, sync={self.sync}"
        )


class SquareAUCLoss(AUCLoss):
    """Square surrogate: ½ mean_pairs (gamma - (p_pos - p_neg))^2, exactly as the official code.

    ``supports_sync`` is True. See :class:`AUCLoss` for arguments and shapes.
    """

    surrogate = "square"
    default_loss_name = "loss_square_auc"


class ExpAUCLoss(AUCLoss):
    """Exponential surrogate: mean_pairs exp(-gamma (p_pos - p_neg)), as the official code.

    ``supports_sync`` is True. See :class:`AUCLoss` for arguments and shapes.
    """

    surrogate = "exp"
    default_loss_name = "loss_exp_auc"


class HingeAUCLoss(AUCLoss):
    """Hinge surrogate.

    ``form="pairwise"`` (default): the true hinge, mean_pairs max(0, gamma - (p_pos - p_neg)),
    exact via per-class sorting; ``supports_sync`` is False and ``sync=True`` raises
    :class:`~aucseg.errors.InputError` (max over pairs has no exact per-class statistics).
    ``form="official"``: the reference implementation's linear formula (no clamp, negatives
    scaled by an extra 1/N_i, the official code), kept to reproduce published numbers;
    ``supports_sync`` is True.

    Args:
        form: "pairwise" or "official", as above.

    See :class:`AUCLoss` for the other arguments and shapes.
    """

    surrogate = "hinge"
    default_loss_name = "loss_hinge_auc"

    def __init__(
        self,
        num_classes: int,
        gamma: float = 1.0,
        transform: Literal["ovo", "ova"] = "ovo",
        loss_weight: float = 1.0,
        ignore_index: int = 255,
        sync: bool = False,
        form: Literal["pairwise", "official"] = "pairwise",
    ) -> None:
        super().__init__(num_classes, gamma, transform, loss_weight, ignore_index)
        self.form = form
        self.sync = sync

    @property
    def supports_sync(self) -> bool:  # type: ignore[override]
        """True for ``form="official"``, False for ``form="pairwise"``."""
        return self._form == "official"

    @property
    def form(self) -> str:
        """ "pairwise" or "official" (see the class docstring)."""
        return self._form

    @form.setter
    def form(self, value: str) -> None:
        """Set the form; InputError for an unknown one, or "pairwise" while ``sync`` is on."""
        check_options(self.surrogate, self.transform, self.gamma, value, self.sync)
        self._form = value

    def _sync_reason(self) -> str:
        """Why the pairwise form cannot be synced, and the fix."""
        return PAIRWISE_SYNC_REASON

    def _compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The unweighted loss of checked inputs, in ``self.form``."""
        return compute_auc_loss(
            logits, target, self.surrogate, self.gamma, self.transform, self.ignore_index,
            self.sync, self.form,
        )  # fmt: skip

    def extra_repr(self) -> str:
        """Constructor arguments for ``print(module)``."""
        return f"{super().extra_repr()}, form={self.form!r}"
