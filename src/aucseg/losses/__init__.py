"""Segmentation losses: the pixel-level AUC family (spec §2) and mmseg-style cross-entropy.

Example:
    >>> from aucseg.losses import SquareAUCLoss, build_loss
    >>> auc = SquareAUCLoss(num_classes=150, loss_weight=4.0)
    >>> ce = build_loss("cross_entropy", num_classes=150)
    >>> loss = auc(logits, target) + ce(logits, target)  # doctest: +SKIP
    >>> with input_checks(False):  # steady-state steps: no host sync from the value checks
    ...     loss = auc(logits, target)  # doctest: +SKIP
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
from aucseg.losses.registry import LOSSES, build_loss, loss_options
from aucseg.losses.validation import (
    input_checks,
    input_checks_enabled,
    set_input_checks,
    validate_inputs,
)

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
    "input_checks",
    "input_checks_enabled",
    "loss_options",
    "set_input_checks",
    "square_auc_loss",
    "validate_inputs",
]
