"""Shared parts of the pixel-wise baseline losses: the module base, dtype and averaging rules.

Every baseline loss (cross-entropy and its long-tail variants, focal, Lovasz-softmax, Dice) is a
:class:`PixelLoss`: ``forward(logits (B, C, H, W), target (B, H, W)) -> 0-dim tensor`` times
``loss_weight``, fp16/bf16 logits computed in fp32, pixels labelled ``ignore_index`` dropped,
and no exact distributed mode (``supports_sync = False``: under DDP each process computes the
loss of its local batch).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from aucseg.errors import InputError
from aucseg.losses.validation import (
    check_ignore_index,
    check_loss_weight,
    check_num_classes,
    validate_inputs,
)

__all__ = [
    "PixelLoss",
    "check_choice",
    "check_real",
    "float32_logits",
    "per_class_tensor",
    "pixel_mean",
]


def float32_logits(logits: torch.Tensor) -> torch.Tensor:
    """``logits`` in fp32 when they are fp16/bf16; fp32 and fp64 are returned unchanged."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def pixel_mean(
    total: torch.Tensor, target: torch.Tensor, ignore_index: int, avg_non_ignore: bool
) -> torch.Tensor:
    """mmseg 0.24.1 averaging of a per-pixel loss summed over the valid pixels.

    Args:
        total: 0-dim sum of the per-pixel losses (ignored pixels contribute 0).
        target: (B, H, W) labels.
        ignore_index: Label value of ignored pixels.
        avg_non_ignore: False: divide by all B·H·W pixels (mmseg default); True: by the number
            of valid pixels. Either count is clamped to >= 1, so an empty batch gives 0.

    Returns:
        0-dim tensor of ``total``'s dtype.
    """
    if avg_non_ignore:
        denom = (target != ignore_index).sum().clamp(min=1).to(total.dtype)
    else:  # filled on the device: no host-to-device copy (a sync on CUDA) per step
        denom = torch.full((), max(target.numel(), 1), dtype=total.dtype, device=total.device)
    return total / denom


def check_real(value: object, name: str, minimum: float | None = None) -> float:
    """``value`` as float; TypeError unless a real number, InputError unless finite, >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = f" and >= {minimum}" if minimum is not None else ""
        raise InputError(f"{name} must be finite{bound}, got {value}; set {name} to such a value")
    return float(value)


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """``value`` unless it is not one of ``choices`` (InputError naming them)."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise InputError(f"{name} must be one of {allowed}, got {value!r}; pick one of those")
    return str(value)


def per_class_tensor(
    values: object, num_classes: int, name: str, minimum: float = 0.0
) -> torch.Tensor:
    """A (C,) float64 tensor from a per-class list of finite numbers >= ``minimum``.

    Raises:
        TypeError: ``values`` is not a list/tuple of real numbers.
        InputError: wrong length, or a value that is not finite or below ``minimum``.
    """
    if not isinstance(values, (list, tuple)) or any(
        isinstance(v, bool) or not isinstance(v, (int, float)) for v in values
    ):
        raise TypeError(f"{name} must be a list of numbers, got {values!r}")
    if len(values) != num_classes:
        raise InputError(
            f"{name} has {len(values)} entries but num_classes={num_classes}; give one value "
            "per class"
        )
    bad = [v for v in values if not math.isfinite(v) or v < minimum]
    if bad:
        raise InputError(
            f"{name} holds {bad[:5]}; every entry must be finite and >= {minimum}: fix those"
        )
    return torch.tensor([float(v) for v in values], dtype=torch.float64)


class PixelLoss(nn.Module, ABC):
    """Base of the baseline losses: checks, ``loss_weight``, ``loss_name``, no sync mode.

    Subclasses set ``default_loss_name`` and implement :meth:`compute` on validated inputs.

    Args:
        num_classes: Number of classes C (>= ``min_classes``), checked against the logits.
        loss_weight: Multiplies the result.
        ignore_index: Label value whose pixels are dropped.
        min_classes: Smallest allowed C.

    Shape:
        forward(logits (B, C, H, W), target (B, H, W)) -> 0-dim tensor (fp32 for fp16/bf16
        logits, fp64 for fp64 logits).
    """

    supports_sync: ClassVar[bool] = False
    default_loss_name: ClassVar[str] = "loss_pixel"

    def __init__(
        self, num_classes: int, loss_weight: float, ignore_index: int, min_classes: int = 1
    ) -> None:
        super().__init__()
        self.num_classes = check_num_classes(num_classes, min_classes)
        self.loss_weight = check_loss_weight(loss_weight)
        self.ignore_index = check_ignore_index(ignore_index)
        self.loss_name = self.default_loss_name

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of ``logits`` against ``target``, times ``loss_weight``."""
        validate_inputs(logits, target, self.num_classes, self.ignore_index)
        return self.compute(logits, target) * self.loss_weight

    @abstractmethod
    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The unweighted loss of validated inputs."""

    def extra_repr(self) -> str:
        """The common constructor arguments for ``print(module)``."""
        return (
            f"num_classes={self.num_classes}, loss_weight={self.loss_weight}, "
            f"ignore_index={self.ignore_index}"
        )
