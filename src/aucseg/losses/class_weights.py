"""Per-class loss weights from training pixel counts (the ``pixel_counts`` of ``aucseg stats``).

Frequencies are ``f_c = n_c / sum_k n_k``; K is the number of classes with ``n_c > 0``. A class
with a zero count (absent from the training statistics but possibly present in a batch) is
treated as having the smallest positive count, so it gets the largest weight of the classes seen
rather than weight 0 (which would silently drop its pixels) or an infinite one. Each method
keeps the scale of its paper:

- ``inverse``: ``1 / (K f_c)``, scaled so that a training pixel's expected weight
  ``sum_c f_c w_c`` is 1 (scikit-learn's "balanced" weights).
- ``median``: ``median_k(f_k) / f_c`` over the classes with ``n_k > 0``: the median class has
  weight 1 (median frequency balancing, Eigen & Fergus, ICCV 2015, here with the frequency over
  all training pixels instead of over the images containing the class).
- ``enet``: ``1 / ln(1.02 + f_c)``, in (1.43, 50.5] as published (Paszke, Chaurasia, Kim,
  Culurciello, "ENet", arXiv:1606.02147, 2016).
- ``effective``: ``(1 - beta) / (1 - beta^n_c)``, scaled to mean 1 over the K classes (Cui, Jia,
  Lin, Song, Belongie, "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019).
  With pixel counts (1e5 to 1e9 per class) ``beta = 0.999`` saturates (``beta^n ~ 0``) and gives
  nearly uniform weights; ``1 - beta`` must be of the order of ``1 / n_c`` (e.g.
  ``beta = 1 - 1e-7``) for the weights to differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from aucseg.errors import InputError
from aucseg.losses._common import check_choice, per_class_tensor

__all__ = [
    "WEIGHT_METHODS",
    "WeightMethod",
    "class_counts_tensor",
    "class_weights_from_counts",
    "fill_zero_counts",
]

WeightMethod = Literal["inverse", "median", "enet", "effective"]
WEIGHT_METHODS: tuple[str, ...] = ("inverse", "median", "enet", "effective")


def class_counts_tensor(counts: object, num_classes: int, loss: str) -> torch.Tensor:
    """Validated per-class training pixel counts as a (C,) float64 tensor.

    Args:
        counts: One count >= 0 per class (a list, tuple, 1-d tensor or array), or None.
        num_classes: C.
        loss: Name of the loss or option that needs the counts (for the message).

    Raises:
        InputError: ``counts`` is None, has the wrong length, a negative or non-finite entry,
            or no positive entry.
    """
    if counts is None:
        raise InputError(
            f"{loss} needs class_counts (per-class training pixel counts), got None; set "
            "data.class_groups to an `aucseg stats` file (its pixel_counts fill class_counts) "
            "or pass class_counts=[...] explicitly"
        )
    if not isinstance(counts, (list, tuple)) and hasattr(counts, "tolist"):
        counts = counts.tolist()  # a tensor or numpy array
    tensor = per_class_tensor(counts, num_classes, "class_counts")
    if not bool((tensor > 0).any()):
        raise InputError(
            f"class_counts are all zero ({counts!r}); pass the training pixel counts of "
            "`aucseg stats`, with at least one positive count"
        )
    return tensor


def fill_zero_counts(counts: torch.Tensor) -> torch.Tensor:
    """``counts`` with each zero entry replaced by the smallest positive count.

    Shape:
        counts (C,) with at least one positive entry -> (C,).
    """
    positive = counts > 0
    smallest = counts[positive].min()
    return torch.where(positive, counts, smallest)


def class_weights_from_counts(
    counts: Sequence[float] | torch.Tensor, method: WeightMethod, beta: float = 0.999
) -> torch.Tensor:
    """Per-class loss weights from training pixel counts (see the module docstring).

    Args:
        counts: (C,) pixel counts >= 0, at least one positive.
        method: "inverse", "median", "enet" or "effective".
        beta: Effective-number parameter in [0, 1) (only for "effective").

    Returns:
        (C,) float32 tensor of positive weights.

    Raises:
        InputError: an unknown method, bad counts, or ``beta`` outside [0, 1).
    """
    check_choice(method, "class_weight", WEIGHT_METHODS)
    n = class_counts_tensor(counts, len(counts), "class_weights_from_counts")
    positive = n > 0
    k = positive.sum().to(torch.float64)
    filled = fill_zero_counts(n)
    freq = filled / n.sum()
    if method == "inverse":
        weights = 1.0 / (k * freq)
    elif method == "median":
        weights = torch.quantile(freq[positive], 0.5) / freq
    elif method == "enet":
        weights = 1.0 / torch.log(1.02 + freq)
    else:
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
            raise InputError(f"beta must be in [0, 1), got {beta!r}; e.g. beta=0.999")
        # 1 - beta^n as -expm1(n log beta): exact for beta close to 1 (log 0 = -inf gives 1)
        effective = -torch.expm1(filled * torch.log(torch.tensor(float(beta), dtype=n.dtype)))
        weights = (1.0 - beta) / effective
        weights = weights * k / weights[positive].sum()
    return weights.float()
