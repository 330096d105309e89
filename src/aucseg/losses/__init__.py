"""Segmentation losses: the pixel-level AUC family (spec §2) and mmseg-style cross-entropy.

Example:
    >>> from aucseg.losses import SquareAUCLoss, build_loss
    >>> auc = SquareAUCLoss(num_classes=150, loss_weight=4.0)
    >>> ce = build_loss("cross_entropy", num_classes=150)
    >>> loss = auc(logits, target) + ce(logits, target)  # doctest: +SKIP
"""

from aucseg.losses.auc import AUCLoss, ExpAUCLoss, HingeAUCLoss, SquareAUCLoss
from aucseg.losses.cross_entropy import CrossEntropyLoss
from aucseg.losses.functional import (
    auc_loss,
    cross_entropy_loss,
    exp_auc_loss,
    hinge_auc_loss,
    square_auc_loss,
)
from aucseg.losses.registry import LOSSES, build_loss
from aucseg.losses.validation import validate_inputs

__all__ = [
    "LOSSES",
    "AUCLoss",
    "CrossEntropyLoss",
    "ExpAUCLoss",
    "HingeAUCLoss",
    "SquareAUCLoss",
    "auc_loss",
    "build_loss",
    "cross_entropy_loss",
    "exp_auc_loss",
    "hinge_auc_loss",
    "square_auc_loss",
    "validate_inputs",
]
