"""Lovász-softmax loss (Berman, Rannen Triki, Blaschko, "The Lovász-Softmax loss: A tractable
surrogate for the optimization of the intersection-over-union measure in neural networks",
CVPR 2018, Algorithm 1 and Eq. 12), batched over classes with one sort.

For class c with foreground ``F_c = {i : y_i = c}`` and pixel errors ``e_i = |[y_i = c] - p_ic|``
(p the softmax probabilities), sort the errors in decreasing order; with ``S_k`` the first k
pixels, the Jaccard loss of a mispredicted set is ``Delta(S) = |S| / |F_c ∪ S|`` and the loss of
class c is the Lovász extension ``sum_k e_(k) (Delta(S_k) - Delta(S_{k-1}))``. The increments
are computed in closed form: ``1 / |F ∪ S_k|`` for a foreground pixel and
``|F \\ S_k| / (|F ∪ S_{k-1}| |F ∪ S_k|)`` for a background one (``1`` for the first pixel
when F is empty), which avoids the cancellation of differencing ``1 - I/U`` in fp32 when the
union holds millions of pixels. The increments are constants for autograd, as in the reference.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from aucseg.losses._common import PixelLoss, check_choice, float32_logits
from aucseg.losses.validation import validate_inputs

__all__ = ["LovaszClasses", "LovaszSoftmaxLoss", "lovasz_softmax_loss"]

LovaszClasses = Literal["present", "all"]


def lovasz_increments(fg_sorted: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Jaccard-loss increments ``Delta(S_k) - Delta(S_{k-1})`` along each row.

    Args:
        fg_sorted: (R, M) bool, foreground flags in decreasing order of error.
        dtype: Floating dtype of the result.

    Returns:
        (R, M) tensor of ``dtype``: the gradient of the Lovász extension w.r.t. sorted errors.
    """
    fg = fg_sorted.to(torch.int32)
    seen_fg = fg.cumsum(1, dtype=torch.int32)  # |F ∩ S_k|
    rank = torch.arange(1, fg.shape[1] + 1, device=fg.device, dtype=torch.int32)
    n_fg = fg.sum(1, keepdim=True, dtype=torch.int32)  # |F|
    union = (n_fg + rank - seen_fg).to(dtype)  # |F ∪ S_k| >= 1
    missed = (n_fg - seen_fg).to(dtype)  # |F \ S_k|
    before = union - 1.0  # |F ∪ S_{k-1}| when pixel k is background
    background = (missed + (before == 0).to(dtype)) / (before * union).clamp(min=1.0)
    return torch.where(fg_sorted, 1.0 / union, background)


def _grouped(
    probs: torch.Tensor, target: torch.Tensor, per_image: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities (G, C, M) and labels (G, 1, M): one group per image, or the whole batch."""
    b, c = probs.shape[:2]
    pixels = math.prod(target.shape[1:])  # explicit: -1 is ambiguous for an empty batch
    if per_image:
        return probs.reshape(b, c, pixels), target.reshape(b, 1, pixels)
    return probs.transpose(0, 1).reshape(1, c, b * pixels), target.reshape(1, 1, b * pixels)


def compute_lovasz(
    logits: torch.Tensor,
    target: torch.Tensor,
    classes: str,
    per_image: bool,
    ignore_index: int,
) -> torch.Tensor:
    """:func:`lovasz_softmax_loss` on validated inputs."""
    probs = F.softmax(float32_logits(logits), dim=1)
    num_classes = probs.shape[1]
    probs, labels = _grouped(probs, target, per_image)  # (G, C, M), (G, 1, M)
    valid = labels != ignore_index
    ids = torch.arange(num_classes, device=labels.device).view(1, num_classes, 1)
    fg = (labels == ids) & valid  # (G, C, M)
    # ignored pixels get error -1: they sort after every valid pixel (errors are in [0, 1]),
    # so the prefixes S_k of valid pixels are those of the reference that removes them
    errors = (fg.to(probs.dtype) - probs).abs().masked_fill(~valid, -1.0)
    groups, m = errors.shape[0], errors.shape[2]
    rows = groups * num_classes  # explicit: -1 is ambiguous for an empty batch
    sorted_errors, perm = torch.sort(errors.reshape(rows, m), dim=1, descending=True)
    weights = lovasz_increments(fg.reshape(rows, m).gather(1, perm), probs.dtype)
    kept = torch.where(sorted_errors < 0, torch.zeros_like(sorted_errors), sorted_errors)
    per_class = (kept * weights).sum(1).view(groups, num_classes)  # (G, C)
    chosen = fg.any(2).to(probs.dtype) if classes == "present" else torch.ones_like(per_class)
    # mean over chosen classes (0 when none), then over groups (0 for an empty batch)
    per_group = (per_class * chosen).sum(1) / chosen.sum(1).clamp(min=1.0)
    return per_group.sum() / max(groups, 1)


def lovasz_softmax_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    classes: LovaszClasses = "present",
    per_image: bool = False,
    ignore_index: int = 255,
) -> torch.Tensor:
    """Lovász-softmax loss of ``softmax(logits)`` (Berman et al., CVPR 2018).

    Args:
        logits: Raw scores (fp16/bf16 computed in fp32); the softmax is taken here.
        target: Integer labels.
        classes: "present": mean over the classes present in the labels (of the batch, or of
            each image with ``per_image``); "all": mean over all C classes.
        per_image: False: one loss over all valid pixels of the batch; True: the mean over the
            images of each image's loss (an image without a valid pixel contributes 0).
        ignore_index: Label value whose pixels are removed.

    Returns:
        0-dim tensor; 0 when no class is chosen.

    Raises:
        InputError: ``classes`` is not "present" or "all".

    Shape:
        logits (B, C, H, W), target (B, H, W). Memory: about 40 bytes per (class, pixel)
        pair, from one sort over a (C, B·H·W) matrix.
    """
    validate_inputs(logits, target, None, ignore_index)
    check_choice(classes, "classes", ("present", "all"))
    return compute_lovasz(logits, target, classes, bool(per_image), ignore_index)


class LovaszSoftmaxLoss(PixelLoss):
    """Lovász-softmax loss (Berman et al., CVPR 2018), ``loss_name="loss_lovasz"``.

    Equals the authors' reference ``lovasz_softmax(softmax(logits), labels, classes, per_image,
    ignore)`` (see :func:`lovasz_softmax_loss` and the module docstring).

    Args:
        num_classes: Number of classes C (>= 1).
        classes: "present" or "all".
        per_image: Per-image loss averaged over the batch, instead of one batch loss.
        loss_weight: Multiplies the result.
        ignore_index: Label value to ignore.

    Shape:
        forward(logits (B, C, H, W), target (B, H, W)) -> 0-dim tensor.
    """

    default_loss_name = "loss_lovasz"

    def __init__(
        self,
        num_classes: int,
        classes: Literal["present", "all"] = "present",
        per_image: bool = False,
        loss_weight: float = 1.0,
        ignore_index: int = 255,
    ) -> None:
        super().__init__(num_classes, loss_weight, ignore_index)
        self.classes = check_choice(classes, "classes", ("present", "all"))
        self.per_image = bool(per_image)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Lovász-softmax loss of validated inputs."""
        return compute_lovasz(logits, target, self.classes, self.per_image, self.ignore_index)

    def extra_repr(self) -> str:
        """Constructor arguments for ``print(module)``."""
        return f"{super().extra_repr()}, classes={self.classes!r}, per_image={self.per_image}"
