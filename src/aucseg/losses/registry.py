"""Loss registry: ``LOSSES`` name -> class, and ``build_loss``."""

from __future__ import annotations

import inspect

from torch import nn

from aucseg.losses.auc import ExpAUCLoss, HingeAUCLoss, SquareAUCLoss
from aucseg.losses.blv import BLVLoss
from aucseg.losses.cross_entropy import CrossEntropyLoss
from aucseg.losses.dice import DiceLoss
from aucseg.losses.focal import FocalLoss
from aucseg.losses.logit_adjusted import LogitAdjustedLoss
from aucseg.losses.lovasz import LovaszSoftmaxLoss
from aucseg.losses.recall import RecallLoss

__all__ = ["LOSSES", "build_loss"]

LOSSES: dict[str, type] = {
    "square_auc": SquareAUCLoss,
    "hinge_auc": HingeAUCLoss,
    "exp_auc": ExpAUCLoss,
    "cross_entropy": CrossEntropyLoss,
    "focal": FocalLoss,
    "lovasz": LovaszSoftmaxLoss,
    "dice": DiceLoss,
    "logit_adjusted": LogitAdjustedLoss,
    "blv": BLVLoss,
    "recall": RecallLoss,
}


def build_loss(name: str, num_classes: int, **kwargs: object) -> nn.Module:
    """Build a registered loss.

    Args:
        name: A key of :data:`LOSSES`.
        num_classes: Number of classes.
        **kwargs: Constructor keyword arguments of that loss (e.g. ``loss_weight``).

    Returns:
        The loss module (with a ``loss_name`` attribute for logging).

    Raises:
        ValueError: Unknown name (the valid names are listed).
        TypeError: A keyword the loss does not take (its valid keywords are listed).
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))}")
    cls = LOSSES[name]
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self",)]
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise TypeError(f"loss {name!r} got unknown argument(s) {unknown}; it accepts {params[1:]}")
    return cls(num_classes=num_classes, **kwargs)
