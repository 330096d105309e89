"""Segmentation losses: the pixel-level AUC family, mmseg-style cross-entropy and
long-tail baselines (focal, Lovász-softmax, Dice, logit-adjusted, BLV, recall).

Example:
    >>> from aucseg.losses import SquareAUCLoss, build_loss
    >>> auc = SquareAUCLoss(num_classes=150, loss_weight=4.0)
    >>> ce = build_loss("cross_entropy", num_classes=150)
    >>> loss = auc(logits, target) + ce(logits, target)  # doctest: +SKIP
    >>> with input_checks(False):  # steady-state steps: no host sync from the value checks
    ...     loss = auc(logits, target)  # doctest: +SKIP
"""

from aucseg.losses.auc import AUCLoss, ExpAUCLoss, HingeAUCLoss, SquareAUCLoss
from aucseg.losses.blv import BLVLoss, blv_loss
from aucseg.losses.class_weights import class_weights_from_counts
from aucseg.losses.cross_entropy import CrossEntropyLoss
from aucseg.losses.dice import DiceLoss, dice_loss
from aucseg.losses.focal import FocalLoss, focal_loss
from aucseg.losses.functional import (
    auc_loss,
    cross_entropy_loss,
    exp_auc_loss,
    hinge_auc_loss,
    square_auc_loss,
)
from aucseg.losses.logit_adjusted import LogitAdjustedLoss, logit_adjusted_loss
from aucseg.losses.lovasz import LovaszSoftmaxLoss, lovasz_softmax_loss
from aucseg.losses.recall import RecallLoss, recall_loss
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
    "BLVLoss",
    "CrossEntropyLoss",
    "DiceLoss",
    "ExpAUCLoss",
    "FocalLoss",
    "HingeAUCLoss",
    "LogitAdjustedLoss",
    "LovaszSoftmaxLoss",
    "RecallLoss",
    "SquareAUCLoss",
    "auc_loss",
    "blv_loss",
    "build_loss",
    "class_weights_from_counts",
    "cross_entropy_loss",
    "dice_loss",
    "exp_auc_loss",
    "focal_loss",
    "hinge_auc_loss",
    "input_checks",
    "input_checks_enabled",
    "logit_adjusted_loss",
    "loss_options",
    "lovasz_softmax_loss",
    "recall_loss",
    "set_input_checks",
    "square_auc_loss",
    "validate_inputs",
]
