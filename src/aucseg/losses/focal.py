"""Softmax focal loss (Lin, Goyal, Girshick, He, Dollár, "Focal Loss for Dense Object Detection",
ICCV 2017), per pixel, with mmseg 0.24.1 averaging."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aucseg.losses._common import (
    PixelLoss,
    check_real,
    float32_logits,
    per_class_tensor,
    pixel_mean,
)
from aucseg.losses.validation import validate_inputs

__all__ = ["FocalLoss", "focal_loss"]


def compute_focal(
    logits: torch.Tensor,
    target: torch.Tensor,
    gamma: float,
    alpha: torch.Tensor | float | None,
    ignore_index: int,
    avg_non_ignore: bool,
) -> torch.Tensor:
    """:func:`focal_loss` on validated inputs; ``alpha`` a (C,) tensor, a float or None."""
    x = float32_logits(logits)
    valid = target != ignore_index  # (B, H, W)
    labels = torch.where(valid, target, 0).long()
    log_pt = F.log_softmax(x, dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)  # (B, H, W)
    # 1 - p_t as -expm1(log p_t): accurate near p_t = 1; the clamp keeps pow's gradient finite
    # (gamma < 1) where p_t rounds to 1 and the focal factor is 0 anyway
    modulating = (-torch.expm1(log_pt)).clamp(min=torch.finfo(x.dtype).tiny).pow(gamma)
    loss = -modulating * log_pt
    if isinstance(alpha, torch.Tensor):
        loss = loss * alpha.to(device=x.device, dtype=x.dtype)[labels]
    elif alpha is not None:
        loss = loss * alpha
    total = torch.where(valid, loss, torch.zeros((), dtype=x.dtype, device=x.device)).sum()
    return pixel_mean(total, target, ignore_index, avg_non_ignore)


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: torch.Tensor | float | None = None,
    ignore_index: int = 255,
    avg_non_ignore: bool = False,
) -> torch.Tensor:
    """Softmax focal loss ``-alpha_t (1 - p_t)^gamma log p_t``, averaged like mmseg CE.

    Args:
        logits: Raw scores; p = softmax over classes (fp16/bf16 computed in fp32).
        target: Integer labels.
        gamma: Focusing parameter >= 0 (0 with ``alpha=None`` is cross-entropy).
        alpha: None (1), a float multiplying every pixel, or a (C,) tensor ``alpha[y]``.
        ignore_index: Label value to ignore (contributes 0).
        avg_non_ignore: False: sum / all B·H·W pixels; True: / valid pixels.

    Returns:
        0-dim tensor.

    Raises:
        InputError: ``gamma`` < 0 or not finite.

    Shape:
        logits (B, C, H, W), target (B, H, W).
    """
    validate_inputs(logits, target, None, ignore_index)
    gamma = check_real(gamma, "gamma", minimum=0.0)
    return compute_focal(logits, target, gamma, alpha, ignore_index, avg_non_ignore)


class FocalLoss(PixelLoss):
    """Softmax focal loss (Lin et al., ICCV 2017) for segmentation, ``loss_name="loss_focal"``.

    ``FL(p_t) = -alpha_t (1 - p_t)^gamma log p_t`` per valid pixel, ``p_t`` the softmax
    probability of the true class, averaged over pixels as :class:`CrossEntropyLoss` (mmseg
    0.24.1: / all B·H·W pixels, or / valid pixels with ``avg_non_ignore``). The paper's
    alpha-balanced form extends to K classes as a per-class ``alpha_t = alpha[y]``; a single float
    ``alpha`` (the binary form's foreground weight) has no per-class meaning under softmax and
    scales every pixel.

    Args:
        num_classes: Number of classes C (>= 1).
        gamma: Focusing parameter >= 0.
        alpha: None, a float >= 0, or a list of C weights >= 0.
        loss_weight: Multiplies the result.
        ignore_index: Label value to ignore.
        avg_non_ignore: See above.

    Shape:
        forward(logits (B, C, H, W), target (B, H, W)) -> 0-dim tensor.
    """

    default_loss_name = "loss_focal"

    def __init__(
        self,
        num_classes: int,
        gamma: float = 2.0,
        alpha: float | list[float] | None = None,
        loss_weight: float = 1.0,
        ignore_index: int = 255,
        avg_non_ignore: bool = False,
    ) -> None:
        super().__init__(num_classes, loss_weight, ignore_index)
        self.gamma = check_real(gamma, "gamma", minimum=0.0)
        self.avg_non_ignore = bool(avg_non_ignore)
        self.alpha_scalar: float | None = None
        per_class = None
        if isinstance(alpha, (list, tuple)):
            per_class = per_class_tensor(alpha, self.num_classes, "alpha").float()
        elif alpha is not None:
            self.alpha_scalar = check_real(alpha, "alpha", minimum=0.0)
        self.register_buffer("alpha", per_class, persistent=False)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Focal loss of validated inputs."""
        alpha = self.alpha if self.alpha is not None else self.alpha_scalar
        return compute_focal(
            logits, target, self.gamma, alpha, self.ignore_index, self.avg_non_ignore
        )

    def extra_repr(self) -> str:
        """Constructor arguments for ``print(module)``."""
        alpha = self.alpha_scalar if self.alpha is None else self.alpha.tolist()
        return f"{super().extra_repr()}, gamma={self.gamma}, alpha={alpha}"
