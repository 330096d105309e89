"""Pixel-level AUC losses (square, exp, hinge; one-vs-one and one-vs-all) and cross-entropy.

Notation: scores ``p[j, c] = sigmoid(z[j, c])`` over the M valid pixels, labels
``y[j]``, class counts ``N_c``, present classes ``P = {c : N_c > 0}``, ``K = |P|``, margin gamma.
For class i the positives are the pixels with ``y = i`` and the negatives all other valid pixels,
weighted ``1 / N_{y[n]}`` (ovo: a mean over every other present class) or ``1 / (M - N_i)``
(ova). ``loss = factor * sum_{i in P} term_i`` with ``factor = 1 / (K (K - 1))`` (ovo) or ``1``
(ova), and ``0`` with a zero gradient when ``K < 2``.

The square, exp and official-hinge terms are computed from per-class sums (O(M·C) time, O(C)
statistics, no pairs, no one-hot), which also makes them exact across processes. The pairwise
hinge is computed exactly by sorting each class column (O(M log M) per class, in blocks).
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F

from aucseg import dist
from aucseg.errors import InputError
from aucseg.losses._column_stats import NUM_PSI, AllReduceSum, ColumnStats
from aucseg.losses._pairwise import PairwiseHinge
from aucseg.losses.validation import HingeForm, Surrogate, Transform, check_options, validate_inputs

__all__ = [
    "auc_loss",
    "cross_entropy_loss",
    "exp_auc_loss",
    "hinge_auc_loss",
    "square_auc_loss",
]


def _acc_dtype(logits: torch.Tensor) -> torch.dtype:
    """Statistics dtype: fp64 for fp64 logits, fp32 otherwise (fp16/bf16 included)."""
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def _labels_and_counts(
    target: torch.Tensor, num_classes: int, ignore_index: int, sync: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flattened labels (ignored -> 0), valid mask and (global when synced) class counts.

    Shape:
        target (B, *S) -> labels (B, L) int64, valid (B, L) bool, counts (C,) int64.
    """
    flat = target.reshape(target.shape[0], math.prod(target.shape[1:]))  # explicit: B may be 0
    valid = flat != ignore_index
    labels = torch.where(valid, flat, torch.zeros_like(flat)).long()
    counts = torch.zeros(num_classes, dtype=torch.long, device=target.device)
    counts.scatter_add_(0, labels.reshape(-1), valid.reshape(-1).long())
    if sync:
        dist.all_reduce_sum(counts)
    return labels, valid, counts


def _positive_stats(
    scores: torch.Tensor, surrogate: str, gamma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """phi_k(a) of the positives' own-class scores and psi_k(a) (to remove them from R).

    Shape:
        scores (n,) -> phi (n, K_phi), psi (n, K_psi).
    """
    if surrogate == "square":
        d = scores - gamma
        return torch.stack([d, d * d], dim=1), torch.stack([scores, scores * scores], dim=1)
    if surrogate == "exp":
        return torch.exp(-gamma * scores).unsqueeze(1), torch.exp(gamma * scores).unsqueeze(1)
    return scores.unsqueeze(1), scores.unsqueeze(1)


def _class_terms(
    surrogate: str,
    pos: torch.Tensor,
    neg: torch.Tensor,
    inv_n: torch.Tensor,
    n_neg_classes: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """Per-class term from positive sums ``pos`` and weighted negative sums ``neg``.

    ``n_neg_classes`` is the total negative weight of a positive (K - 1 for ovo, 1 for ova).

    Shape:
        pos (C, K_phi), neg (C, K_psi), inv_n (C,), n_neg_classes (C,) -> (C,).
    """
    if surrogate == "square":  # ½ mean_pairs (gamma - a + b)^2, expanded (as the official code)
        quad = 0.5 * n_neg_classes * inv_n * pos[:, 1] + 0.5 * neg[:, 1]
        return quad - inv_n * pos[:, 0] * neg[:, 0]
    if surrogate == "exp":  # mean_pairs exp(-gamma (a - b)), separable (as the official code)
        return inv_n * pos[:, 0] * neg[:, 0]
    # official "hinge": linear, negative term carries an extra 1/N_i (as the official code)
    return n_neg_classes * (gamma - inv_n * pos[:, 0]) + inv_n * neg[:, 0]


def _safe_reciprocal(x: torch.Tensor) -> torch.Tensor:
    """1/x where x > 0, else 0 (x holds counts, so x >= 1 where positive)."""
    return torch.where(x > 0, 1.0 / x.clamp(min=1.0), torch.zeros_like(x))


def _negative_weights(
    labels: torch.Tensor, valid: torch.Tensor, inv_n: torch.Tensor, transform: str
) -> torch.Tensor:
    """Pixel weight of a negative: 1/N_y (ovo) or 1 (ova, scaled per class later); 0 if ignored.

    Shape:
        labels, valid (B, L), inv_n (C,) -> (B, L) in ``inv_n.dtype``.
    """
    weights = inv_n[labels] if transform == "ovo" else torch.ones_like(labels, dtype=inv_n.dtype)
    return weights * valid


def _normalisation(
    transform: str, n: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class negative scale, total negative weight per positive, and the class-sum factor.

    ovo: negatives carry 1/N_y (applied per pixel), a positive meets K - 1 classes of total
    weight K - 1, and the sum over classes is divided by K (K - 1). ova: negatives of class i are
    averaged (1/(M - N_i)), total weight 1, classes summed. The factor is 0 when K < 2.

    Shape:
        n (C,) class counts -> (C,), (C,), ().
    """
    k = (n > 0).sum().to(n.dtype)
    if transform == "ovo":
        factor = torch.where(k >= 2, 1.0 / (k * (k - 1.0)).clamp(min=1.0), torch.zeros_like(k))
        return torch.ones_like(n), (k - 1.0).expand_as(n), factor
    n_neg = n.sum() - n
    return _safe_reciprocal(n_neg), (n_neg > 0).to(n.dtype), (k >= 2).to(n.dtype)


def _label_column_sums(
    scores: torch.Tensor,
    labels: torch.Tensor,
    valid: torch.Tensor,
    weights: torch.Tensor,
    surrogate: str,
    gamma: float,
    num_classes: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over each class's own pixels: phi_k(a) and weights * psi_k(a), a = own-class score.

    Shape:
        scores, labels, valid, weights (B, L) -> pos (C, K_phi), own (C, K_psi).
    """
    phi, psi = _positive_stats(scores.reshape(-1), surrogate, gamma)
    flat_labels = labels.reshape(-1)
    phi = phi * valid.reshape(-1, 1)
    psi = psi * weights.reshape(-1, 1)
    pos = phi.new_zeros(num_classes, phi.shape[1]).index_add(0, flat_labels, phi)
    own = psi.new_zeros(num_classes, psi.shape[1]).index_add(0, flat_labels, psi)
    return pos, own


def _separable_auc_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    surrogate: str,
    gamma: float,
    transform: str,
    ignore_index: int,
    sync: bool,
) -> torch.Tensor:
    """Square / exp / official-hinge AUC loss from O(C) per-class statistics."""
    num_classes = logits.shape[1]
    acc = _acc_dtype(logits)
    sync = sync and dist.is_distributed()
    labels, valid, counts = _labels_and_counts(target, num_classes, ignore_index, sync)
    n = counts.to(acc)
    inv_n = _safe_reciprocal(n)
    weights = _negative_weights(labels, valid, inv_n, transform)
    z = logits.reshape(labels.shape[0], num_classes, labels.shape[1])  # (B, C, L)
    column, scores = ColumnStats.apply(z, labels, weights, surrogate, gamma)  # (K_psi, C), (B, L)
    pos, own = _label_column_sums(scores, labels, valid, weights, surrogate, gamma, num_classes)
    stats = torch.cat([column.t(), pos, own], dim=1)  # (C, 2 K_psi + K_phi)
    if sync:  # O(C) numbers; every rank then holds the global-batch statistics
        stats = AllReduceSum.apply(stats, dist.get_world_size())
    k_psi = NUM_PSI[surrogate]
    column, pos, own = stats.split([k_psi, pos.shape[1], k_psi], dim=1)
    neg_scale, n_neg_classes, factor = _normalisation(transform, n)
    neg = (column - own) * neg_scale[:, None]  # (C, K_psi): sums over each class's negatives
    terms = _class_terms(surrogate, pos, neg, inv_n, n_neg_classes, gamma)
    return factor * torch.where(counts > 0, terms, torch.zeros_like(terms)).sum()


def _pairwise_hinge_loss(
    logits: torch.Tensor, target: torch.Tensor, gamma: float, transform: str, ignore_index: int
) -> torch.Tensor:
    """Exact mean over pairs of max(0, gamma - (p_pos - p_neg)), by sorting each class column.

    See :mod:`aucseg.losses._pairwise`. O(M log M) per class, no pairs formed.
    """
    num_classes = logits.shape[1]
    acc = _acc_dtype(logits)
    labels, valid, counts = _labels_and_counts(target, num_classes, ignore_index, sync=False)
    n = counts.to(acc)
    inv_n = _safe_reciprocal(n)
    neg_scale, _, factor = _normalisation(transform, n)
    beta = _negative_weights(labels, valid, inv_n, transform)
    labels = torch.where(valid, labels, torch.full_like(labels, -1))  # ignored: never positive
    z = logits.reshape(labels.shape[0], num_classes, labels.shape[1])  # (B, C, L)
    return PairwiseHinge.apply(z, labels, beta, neg_scale, inv_n, factor, gamma)


def auc_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    surrogate: Surrogate = "square",
    *,
    gamma: float = 1.0,
    transform: Transform = "ovo",
    ignore_index: int = 255,
    sync: bool = False,
    form: HingeForm = "pairwise",
) -> torch.Tensor:
    """Pixel-level multi-class AUC loss on sigmoid scores (loss weight not applied).

    Args:
        logits: Raw scores upsampled to the label size; sigmoid is applied inside.
        target: Integer labels; ``ignore_index`` pixels are dropped.
        surrogate: "square", "exp" or "hinge".
        gamma: Margin (> 0).
        transform: "ovo" (mean over the K(K-1) ordered present-class pairs) or "ova" (sum over
            classes of the one-vs-rest loss, not averaged, as in the official code).
        ignore_index: Label value to ignore.
        sync: Under an initialised process group, sum the per-class statistics over processes
            so the value is the global-batch loss on every rank and the gradient w.r.t. local
            logits is world_size x the global-batch gradient (DDP then averages to the exact
            global gradient). Without a process group: the local loss.
        form: Hinge only: "pairwise" (true hinge) or "official" (linear, reference formula).

    Returns:
        0-dim tensor (fp32, fp64 for fp64 logits); 0 with a zero gradient when fewer than two
        classes are present.

    Raises:
        TypeError, InputError: See :func:`validate_inputs` and :func:`check_options`; fewer
            than 2 channels.

    Shape:
        logits (B, C, H, W), target (B, H, W).
    """
    check_options(surrogate, transform, gamma, form, sync)
    validate_inputs(logits, target, None, ignore_index)
    if logits.shape[1] < 2:
        raise InputError(
            f"AUC losses need at least 2 classes, got logits with {logits.shape[1]} channel(s)"
        )
    return compute_auc_loss(logits, target, surrogate, gamma, transform, ignore_index, sync, form)


def compute_auc_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    surrogate: str,
    gamma: float,
    transform: str,
    ignore_index: int,
    sync: bool = False,
    form: str = "pairwise",
) -> torch.Tensor:
    """:func:`auc_loss` without the option and input checks (callers have done them).

    ``form`` is read only for the hinge surrogate.
    """
    if surrogate == "hinge" and form == "pairwise":
        return _pairwise_hinge_loss(logits, target, float(gamma), transform, ignore_index)
    return _separable_auc_loss(
        logits, target, surrogate, float(gamma), transform, ignore_index, sync
    )


# Shorthands with the surrogate bound; every other option is :func:`auc_loss`'s (keywords).
square_auc_loss = partial(auc_loss, surrogate="square")
square_auc_loss.__doc__ = "auc_loss(logits, target, surrogate='square', ...): ½ (gamma - d)^2."
exp_auc_loss = partial(auc_loss, surrogate="exp")
exp_auc_loss.__doc__ = "auc_loss(logits, target, surrogate='exp', ...): exp(-gamma d)."
hinge_auc_loss = partial(auc_loss, surrogate="hinge")
hinge_auc_loss.__doc__ = (
    "auc_loss(logits, target, surrogate='hinge', ...): max(0, gamma - d) (form='pairwise') or "
    "the official linear formula (form='official')."
)


def cross_entropy_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int = 255,
    avg_non_ignore: bool = False,
) -> torch.Tensor:
    """Softmax cross-entropy with mmseg 0.24.1 averaging, as the official code.

    Args:
        logits: Raw scores.
        target: Integer labels.
        ignore_index: Label value to ignore (contributes 0).
        avg_non_ignore: False: sum over valid pixels / all B·H·W pixels (mmseg default);
            True: / number of valid pixels (0 when there is none).

    Returns:
        0-dim tensor (fp32 for fp16/bf16 logits).

    Shape:
        logits (B, C, H, W), target (B, H, W).
    """
    validate_inputs(logits, target, None, ignore_index)
    return compute_cross_entropy(logits, target, ignore_index, avg_non_ignore)


def compute_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, avg_non_ignore: bool
) -> torch.Tensor:
    """:func:`cross_entropy_loss` without the input checks (callers have done them)."""
    x = logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
    total = F.cross_entropy(x, target.long(), ignore_index=ignore_index, reduction="sum")
    if avg_non_ignore:
        denom = (target != ignore_index).sum().clamp(min=1).to(total.dtype)
    else:  # filled on the device: no host-to-device copy (a sync on CUDA) per step
        denom = torch.full((), max(target.numel(), 1), dtype=total.dtype, device=total.device)
    return total / denom
