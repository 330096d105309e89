"""Segmentation losses: the pixel-level AUC family (spec §2), mmseg-style cross-entropy and
long-tail baselines (focal, Lovász-softmax, Dice, logit-adjusted, BLV, recall).

Example:
    >>> from aucseg.losses import SquareAUCLoss, build_loss
    >>> auc = SquareAUCLoss(num_classes=150, loss_weight=4.0)
    >>> ce = build_loss("cross_entropy", num_classes=150)
    >>> loss = auc(logits, target) + ce(logits, target)  # doctest: +SKIP
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
from aucseg.losses.registry import LOSSES, build_loss
from aucseg.losses.validation import validate_inputs

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
    "logit_adjusted_loss",
    "lovasz_softmax_loss",
    "recall_loss",
    "square_auc_loss",
    "validate_inputs",
]
