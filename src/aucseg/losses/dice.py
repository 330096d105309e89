"""Soft multi-class Dice loss (Milletari, Navab, Ahmadi, "V-Net: Fully Convolutional Neural
Networks for Volumetric Medical Image Segmentation", 3DV 2016, Eq. 1), in the form of mmseg
0.24.1's ``DiceLoss``.

Per image b and class c, with softmax probabilities p and one-hot labels g over the valid pixels:
``dice_bc = (2 sum_i p_ic g_ic + smooth) / (sum_i p_ic^exponent + g_ic^exponent + smooth)``;
the loss is ``mean_{b, c} (1 - dice_bc)`` over all B images and all C classes. Ignored pixels are
removed from the numerator and the denominator (mmseg 0.24.1 masks only the numerator, so there
an ignored pixel's probabilities, and a one-hot of its clamped label, still enter the
denominator). A class absent from an image with near-zero probabilities scores
``1 - smooth / (sum p^e + smooth) ~ 0``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aucseg.errors import InputError
from aucseg.losses._common import PixelLoss, check_real, float32_logits
from aucseg.losses.validation import validate_inputs

__all__ = ["DiceLoss", "dice_loss"]


def _check_exponent(exponent: object) -> int:
    """``exponent`` as an int >= 1."""
    if isinstance(exponent, bool) or not isinstance(exponent, int) or exponent < 1:
        raise InputError(f"exponent must be an int >= 1, got {exponent!r}; e.g. exponent=2")
    return exponent


def compute_dice(
    logits: torch.Tensor, target: torch.Tensor, smooth: float, exponent: int, ignore_index: int
) -> torch.Tensor:
    """:func:`dice_loss` on validated inputs."""
    probs = F.softmax(float32_logits(logits), dim=1)
    b, c = probs.shape[:2]
    pixels = math.prod(target.shape[1:])  # explicit: -1 is ambiguous for an empty batch
    probs = probs.reshape(b, c, pixels)  # (B, C, P)
    labels = target.reshape(b, 1, pixels)  # (B, 1, P)
    valid = (labels != ignore_index).to(probs.dtype)
    ids = torch.arange(c, device=labels.device).view(1, c, 1)
    onehot = (labels == ids).to(probs.dtype) * valid  # (B, C, P); g^e = g
    probs = probs * valid
    numerator = 2.0 * (probs * onehot).sum(2) + smooth  # (B, C)
    denominator = probs.pow(exponent).sum(2) + onehot.sum(2) + smooth
    return (1.0 - numerator / denominator).sum() / max(b * c, 1)


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    smooth: float = 1.0,
    exponent: int = 2,
    ignore_index: int = 255,
) -> torch.Tensor:
    """Soft multi-class Dice loss of ``softmax(logits)`` (see the module docstring).

    Args:
        logits: Raw scores (fp16/bf16 computed in fp32).
        target: Integer labels.
        smooth: Added to numerator and denominator (> 0 keeps an empty class finite).
        exponent: Power of the probabilities and labels in the denominator (1 or 2 usual).
        ignore_index: Label value whose pixels are removed.

    Returns:
        0-dim tensor in [0, 1].

    Raises:
        InputError: ``smooth`` <= 0 or ``exponent`` not an int >= 1.

    Shape:
        logits (B, C, H, W), target (B, H, W).
    """
    validate_inputs(logits, target, None, ignore_index)
    smooth = _check_smooth(smooth)
    return compute_dice(logits, target, smooth, _check_exponent(exponent), ignore_index)


def _check_smooth(smooth: object) -> float:
    """``smooth`` as a float > 0."""
    value = check_real(smooth, "smooth", minimum=0.0)
    if value == 0.0:
        raise InputError("smooth must be > 0, got 0; an empty class would divide 0 by 0")
    return value


class DiceLoss(PixelLoss):
    """Soft multi-class Dice loss (Milletari et al., 3DV 2016), ``loss_name="loss_dice"``.

    Args:
        num_classes: Number of classes C (>= 1).
        smooth: Smoothing term > 0.
        exponent: Denominator power, an int >= 1 (mmseg default 2).
        loss_weight: Multiplies the result.
        ignore_index: Label value to ignore.

    Shape:
        forward(logits (B, C, H, W), target (B, H, W)) -> 0-dim tensor.
    """

    default_loss_name = "loss_dice"

    def __init__(
        self,
        num_classes: int,
        smooth: float = 1.0,
        exponent: int = 2,
        loss_weight: float = 1.0,
        ignore_index: int = 255,
    ) -> None:
        super().__init__(num_classes, loss_weight, ignore_index)
        self.smooth = _check_smooth(smooth)
        self.exponent = _check_exponent(exponent)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Dice loss of validated inputs."""
        return compute_dice(logits, target, self.smooth, self.exponent, self.ignore_index)

    def extra_repr(self) -> str:
        """Constructor arguments for ``print(module)``."""
        return f"{super().extra_repr()}, smooth={self.smooth}, exponent={self.exponent}"
