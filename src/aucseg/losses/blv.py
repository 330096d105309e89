"""Balanced Logit Variation (Wang, Fei, Wang, Li, Bao, Wu, Zhao, Shen, "Balancing Logit
Variation for Long-tailed Semantic Segmentation", CVPR 2023).

During training every logit is perturbed by a random, non-negative, class-dependent amount
before the softmax cross-entropy; tail classes get larger variation, head classes smaller, and
no variation is added at inference:

``z'_ic = z_ic + s_c |clip(eps_ic, -1, 1)|``,  ``eps_ic ~ N(0, sigma^2)`` i.i.d. per pixel i and
class c,  ``s_c = log(N / n_c) / max_k log(N / n_k)``

with ``n_c`` the training pixel count of class c and ``N = sum_c n_c`` (so ``s`` is the
negative log-frequency scaled to a maximum of 1; the rarest class gets ``s = 1``). This is the
scaling of the authors' released ``BlvLoss`` (mmseg); the paper states the variation's
magnitude is inversely related to the category scale. With the default ``sigma = 4`` most draws
saturate the clip, so ``|clip(eps)|`` is 1 with probability ``2 (1 - Phi(1 / sigma)) ~ 0.80``.
The loss is then averaged like :class:`~aucseg.losses.CrossEntropyLoss` (mmseg 0.24.1). A class
with a zero count gets the smallest positive count (``s = 1``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from aucseg.losses._common import PixelLoss, check_real, float32_logits
from aucseg.losses.class_weights import class_counts_tensor, fill_zero_counts
from aucseg.losses.cross_entropy import weighted_cross_entropy
from aucseg.losses.validation import validate_inputs

__all__ = ["BLVLoss", "blv_loss", "blv_noise", "blv_scale"]


def blv_scale(counts: torch.Tensor) -> torch.Tensor:
    """Per-class variation scale ``log(N / n_c) / max_k log(N / n_k)`` in [0, 1].

    All zeros when every ``log(N / n_c)`` is 0 (a single class holding every pixel).

    Shape:
        counts (C,) float64 with a positive entry -> (C,) float64.
    """
    filled = fill_zero_counts(counts)
    neg_log_freq = torch.log(counts.sum()) - torch.log(filled)  # >= 0
    top = neg_log_freq.max()
    return neg_log_freq / top if float(top) > 0 else torch.zeros_like(neg_log_freq)


def blv_noise(
    like: torch.Tensor,
    scale: torch.Tensor,
    sigma: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Variation ``scale_c * |clip(eps, -1, 1)|`` with ``eps ~ N(0, sigma^2)``, shaped as ``like``.

    Args:
        like: (B, C, H, W) tensor giving shape, dtype and device.
        scale: (C,) per-class scale.
        sigma: Standard deviation of eps (>= 0).
        generator: Random generator on ``like``'s device; None uses the global one.

    Returns:
        (B, C, H, W) tensor >= 0 of ``like``'s dtype, without gradient.
    """
    eps = torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
    shape = (1, like.shape[1]) + (1,) * (like.dim() - 2)
    weight = scale.to(device=like.device, dtype=like.dtype).view(shape)
    return (eps * sigma).clamp(-1.0, 1.0).abs() * weight


def compute_blv(
    logits: torch.Tensor,
    target: torch.Tensor,
    scale: torch.Tensor,
    sigma: float,
    training: bool,
    ignore_index: int,
    avg_non_ignore: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:func:`blv_loss` on validated inputs, with the (C,) ``scale`` of :func:`blv_scale`."""
    x = float32_logits(logits)
    if training and sigma > 0:
        x = x + blv_noise(x, scale, sigma, generator)
    return weighted_cross_entropy(x, target, None, ignore_index, avg_non_ignore)


def blv_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_counts: Sequence[float] | torch.Tensor,
    *,
    sigma: float = 4.0,
    training: bool = True,
    generator: torch.Generator | None = None,
    ignore_index: int = 255,
    avg_non_ignore: bool = False,
) -> torch.Tensor:
    """Cross-entropy of BLV-perturbed logits (see the module docstring).

    Args:
        logits: Raw scores (fp16/bf16 computed in fp32).
        target: Integer labels.
        class_counts: (C,) training pixel counts >= 0 with a positive one.
        sigma: Standard deviation of the Gaussian draw, >= 0.
        training: False: no variation (plain cross-entropy).
        generator: Random generator on the logits' device; None uses the global one.
        ignore_index: Label value to ignore (contributes 0).
        avg_non_ignore: False: sum / all B·H·W pixels; True: / valid pixels.

    Returns:
        0-dim tensor.

    Raises:
        InputError: invalid ``class_counts`` or ``sigma``.

    Shape:
        logits (B, C, H, W), target (B, H, W).
    """
    validate_inputs(logits, target, None, ignore_index)
    scale = blv_scale(class_counts_tensor(class_counts, logits.shape[1], "blv_loss"))
    sigma = check_real(sigma, "sigma", minimum=0.0)
    return compute_blv(
        logits, target, scale, sigma, training, ignore_index, avg_non_ignore, generator
    )


class BLVLoss(PixelLoss):
    """Balanced Logit Variation + cross-entropy (Wang et al., CVPR 2023), ``loss_name="loss_blv"``.

    The variation is drawn from the global random generator while the module is in training
    mode (``module.train()``, the default) and omitted in eval mode (``module.eval()``), where the
    loss is plain cross-entropy.

    Args:
        num_classes: Number of classes C (>= 1).
        sigma: Standard deviation of the Gaussian draw, >= 0 (paper default 4).
        class_counts: Per-class training pixel counts, required (the engine fills them from
            the ``aucseg stats`` file of ``data.class_groups``).
        loss_weight: Multiplies the result.
        ignore_index: Label value to ignore.
        avg_non_ignore: False: sum / all B·H·W pixels (mmseg default); True: / valid pixels.

    Raises:
        InputError: ``class_counts`` missing or invalid, or ``sigma`` < 0.

    Shape:
        forward(logits (B, C, H, W), target (B, H, W)) -> 0-dim tensor.
    """

    default_loss_name = "loss_blv"

    def __init__(
        self,
        num_classes: int,
        sigma: float = 4.0,
        class_counts: list[float] | None = None,
        loss_weight: float = 1.0,
        ignore_index: int = 255,
        avg_non_ignore: bool = False,
    ) -> None:
        super().__init__(num_classes, loss_weight, ignore_index)
        self.sigma = check_real(sigma, "sigma", minimum=0.0)
        self.avg_non_ignore = bool(avg_non_ignore)
        counts = class_counts_tensor(class_counts, self.num_classes, "blv")
        self.register_buffer("scale", blv_scale(counts).float(), persistent=False)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """BLV cross-entropy of validated inputs (variation only in training mode)."""
        return compute_blv(
            logits, target, self.scale, self.sigma, self.training, self.ignore_index,
            self.avg_non_ignore,
        )  # fmt: skip

    def extra_repr(self) -> str:
        """Constructor arguments for ``print(module)``."""
        return f"{super().extra_repr()}, sigma={self.sigma}, avg_non_ignore={self.avg_non_ignore}"
