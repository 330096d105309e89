"""Logit-adjusted softmax cross-entropy (Menon, Jayasumana, Rawat, Jain, Veit, Kumar, "Long-tail
learning via logit adjustment", ICLR 2021, Eq. 10).

``loss_i = -log softmax(z_i + tau * log pi)[y_i]`` with the class prior ``pi_c = n_c / sum n``
from training pixel counts, averaged like :class:`~aucseg.losses.CrossEntropyLoss` (mmseg
0.24.1). Equivalently ``log(1 + sum_{c != y} (pi_c / pi_y)^tau exp(z_c - z_y))``: a larger
margin against frequent classes. ``tau = 1`` is the Balanced Softmax of Ren et al. ("Balanced
Meta-Softmax for Long-Tailed Visual Recognition", NeurIPS 2020), ``p_y = n_y e^{z_y} /
sum_c n_c e^{z_c}``; ``tau = 0`` is plain cross-entropy. The adjustment is applied in training
only by construction: the model's logits stay unadjusted for inference. A class with a zero
count is given the smallest positive count (a finite prior).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from aucseg.losses._common import PixelLoss, check_real, float32_logits
from aucseg.losses.class_weights import class_counts_tensor, fill_zero_counts
from aucseg.losses.cross_entropy import weighted_cross_entropy
from aucseg.losses.validation import validate_inputs

__all__ = ["LogitAdjustedLoss", "log_prior", "logit_adjusted_loss"]


def log_prior(counts: torch.Tensor) -> torch.Tensor:
    """``log(n_c / sum n)`` with zero counts filled by the smallest positive one.

    Shape:
        counts (C,) float64 with a positive entry -> (C,) float64.
    """
    filled = fill_zero_counts(counts)
    return torch.log(filled / filled.sum())


def compute_logit_adjusted(
    logits: torch.Tensor,
    target: torch.Tensor,
    adjustment: torch.Tensor,
    ignore_index: int,
    avg_non_ignore: bool,
) -> torch.Tensor:
    """Cross-entropy of ``logits + adjustment`` on validated inputs; ``adjustment`` is (C,)."""
    x = float32_logits(logits)
    shape = (1, x.shape[1]) + (1,) * (x.dim() - 2)
    shifted = x + adjustment.to(device=x.device, dtype=x.dtype).view(shape)
    return weighted_cross_entropy(shifted, target, None, ignore_index, avg_non_ignore)


def logit_adjusted_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_counts: Sequence[float] | torch.Tensor,
    *,
    tau: float = 1.0,
    ignore_index: int = 255,
    avg_non_ignore: bool = False,
) -> torch.Tensor:
    """Logit-adjusted cross-entropy (see the module docstring).

    Args:
        logits: Raw scores (fp16/bf16 computed in fp32).
        target: Integer labels.
        class_counts: (C,) training pixel counts >= 0 with a positive one.
        tau: Temperature of the adjustment ``tau * log pi`` (any finite value).
        ignore_index: Label value to ignore (contributes 0).
        avg_non_ignore: False: sum / all B·H·W pixels; True: / valid pixels.

    Returns:
        0-dim tensor.

    Raises:
        InputError: invalid ``class_counts`` or a non-finite ``tau``.

    Shape:
        logits (B, C, H, W), target (B, H, W).
    """
    validate_inputs(logits, target, None, ignore_index)
    counts = class_counts_tensor(class_counts, logits.shape[1], "logit_adjusted_loss")
    adjustment = check_real(tau, "tau") * log_prior(counts)
    return compute_logit_adjusted(logits, target, adjustment, ignore_index, avg_non_ignore)


class LogitAdjustedLoss(PixelLoss):
    """Logit-adjusted cross-entropy (Menon et al., ICLR 2021), ``loss_name="loss_logit_adjusted"``.

    Args:
        num_classes: Number of classes C (>= 1).
        tau: Adjustment temperature (1: Balanced Softmax; 0: cross-entropy).
        class_counts: Per-class training pixel counts, required (the engine fills them from
            the ``aucseg stats`` file of ``data.class_groups``).
        loss_weight: Multiplies the result.
        ignore_index: Label value to ignore.
        avg_non_ignore: False: sum / all B·H·W pixels (mmseg default); True: / valid pixels.

    Raises:
        InputError: ``class_counts`` missing or invalid, or ``tau`` not finite.

    Shape:
        forward(logits (B, C, H, W), target (B, H, W)) -> 0-dim tensor.
    """

    default_loss_name = "loss_logit_adjusted"

    def __init__(
        self,
        num_classes: int,
        tau: float = 1.0,
        class_counts: list[float] | None = None,
        loss_weight: float = 1.0,
        ignore_index: int = 255,
        avg_non_ignore: bool = False,
    ) -> None:
        super().__init__(num_classes, loss_weight, ignore_index)
        self.tau = check_real(tau, "tau")
        self.avg_non_ignore = bool(avg_non_ignore)
        counts = class_counts_tensor(class_counts, self.num_classes, "logit_adjusted")
        self.register_buffer("adjustment", self.tau * log_prior(counts), persistent=False)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Logit-adjusted cross-entropy of validated inputs."""
        return compute_logit_adjusted(
            logits, target, self.adjustment, self.ignore_index, self.avg_non_ignore
        )

    def extra_repr(self) -> str:
        """Constructor arguments for ``print(module)``."""
        return f"{super().extra_repr()}, tau={self.tau}, avg_non_ignore={self.avg_non_ignore}"
