"""Loss registry: ``LOSSES`` name -> class, ``build_loss`` and ``loss_options``.

A loss is registered by adding one line to :data:`LOSSES`. Its constructor signature is its
option schema: every parameter has a plain type annotation and its default in the signature,
so a config layer can validate options against :func:`loss_options` and show the defaults.
"""

from __future__ import annotations

import inspect

from torch import nn

from aucseg.errors import InputError
from aucseg.losses.auc import ExpAUCLoss, HingeAUCLoss, SquareAUCLoss
from aucseg.losses.blv import BLVLoss
from aucseg.losses.cross_entropy import CrossEntropyLoss
from aucseg.losses.dice import DiceLoss
from aucseg.losses.focal import FocalLoss
from aucseg.losses.logit_adjusted import LogitAdjustedLoss
from aucseg.losses.lovasz import LovaszSoftmaxLoss
from aucseg.losses.recall import RecallLoss

__all__ = ["LOSSES", "build_loss", "loss_options"]

LOSSES: dict[str, type[nn.Module]] = {
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


def _loss_class(name: str) -> type[nn.Module]:
    """The class registered as ``name``; InputError listing the valid names otherwise."""
    if name not in LOSSES:
        raise InputError(
            f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))}; pick one of them"
        )
    return LOSSES[name]


def loss_options(name: str) -> dict[str, inspect.Parameter]:
    """The config-settable constructor parameters of a registered loss.

    Args:
        name: A key of :data:`LOSSES`.

    Returns:
        Parameter name -> :class:`inspect.Parameter` (every constructor parameter but ``self``,
        ``num_classes`` included), in signature order, with annotations resolved to objects
        (e.g. ``typing.Literal['ovo', 'ova']``) and the defaults of the signature.

    Raises:
        InputError: Unknown name (the valid names are listed).
    """
    signature = inspect.signature(_loss_class(name), eval_str=True)
    return dict(signature.parameters)


def build_loss(name: str, num_classes: int, **kwargs: object) -> nn.Module:
    """Build a registered loss.

    Args:
        name: A key of :data:`LOSSES`.
        num_classes: Number of classes.
        **kwargs: Constructor keyword arguments of that loss (e.g. ``loss_weight``).

    Returns:
        The loss module (with a ``loss_name`` attribute for logging and a ``supports_sync``
        flag).

    Raises:
        InputError: Unknown name (the valid names are listed) or a keyword the loss does not
            take (the key and the accepted ones are named).
    """
    cls = _loss_class(name)
    accepted = [key for key in loss_options(name) if key != "num_classes"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise InputError(
            f"loss {name!r} got unknown option(s) {unknown}; it accepts {accepted}; "
            "remove or rename the option"
        )
    return cls(num_classes=num_classes, **kwargs)
