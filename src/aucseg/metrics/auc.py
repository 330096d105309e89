"""Streaming pixel-level one-vs-one multi-class AUC (the quantity AUCSeg optimises).

For every ordered pair of classes ``(i, j)`` present in the ground truth, ``AUC_ij`` is the
probability that the class-``i`` score of a random class-``i`` pixel exceeds the class-``i``
score of a random class-``j`` pixel (ties count one half). The metric is the mean over the
``K(K-1)`` ordered pairs of the ``K`` present classes.

Scores are binned: a ``(C_true, C_score, bins)`` int64 histogram is filled with one
``bincount`` per update (per chunk of 16M values for very large inputs) and the pairwise AUCs
are read off cumulative sums, so the metric streams over a dataset and all-reduces across ranks.
Pixels whose scores fall into the same bin count as ties, so the binned value differs from the
exact one by at most half the fraction of (positive, negative) pairs that share a bin.
"""

from __future__ import annotations

import torch

from aucseg.dist import all_reduce_sum

# Upper bound on elements of the flattened (pixel, class) index per bincount call: bounds the
# temporary memory for very large images (Cityscapes 1024x2048x19 is ~40M elements).
_CHUNK_ELEMENTS = 1 << 24


class PairwiseAUC:
    """Binned one-vs-one AUC over all pixels seen.

    Args:
        num_classes: number of classes ``C``.
        bins: number of equal-width score bins on ``[0, 1]``.
        ignore_index: ground-truth value to skip (also any target outside ``[0, C)``).
        device: where the histogram lives; moved to the inputs' device on the first update.

    Raises:
        ValueError: ``num_classes < 1`` or ``bins < 1``.
    """

    def __init__(
        self,
        num_classes: int,
        bins: int = 100,
        ignore_index: int = 255,
        device: str | torch.device | None = None,
    ) -> None:
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if int(bins) < 1:
            raise ValueError(f"bins must be >= 1, got {bins}; 100 is a good default")
        if (int(num_classes) + 1) * int(num_classes) * int(bins) >= 2**31:
            raise ValueError(
                f"num_classes={num_classes} x bins={bins} is too large for the int32 histogram "
                "index; use fewer bins"
            )
        self.num_classes = int(num_classes)
        self.bins = int(bins)
        self.ignore_index = int(ignore_index)
        c = self.num_classes
        # hist[t, s, b]: pixels of true class t whose class-s score falls into bin b.
        self.hist = torch.zeros((c, c, self.bins), dtype=torch.int64, device=device)

    def reset(self) -> None:
        """Zero the histogram."""
        self.hist.zero_()

    @torch.no_grad()
    def update(self, scores: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch.

        Args:
            scores: finite per-class scores in ``[0, 1]`` (e.g. sigmoid of logits),
                ``(B, C, H, W)``; values outside are clamped into the end bins.
            target: ground-truth class ids ``(B, H, W)``; ``ignore_index`` pixels are skipped.

        Raises:
            TypeError: ``scores`` not floating point or ``target`` not integer.
            ValueError: shapes disagree with each other or with ``num_classes``.
        """
        if not isinstance(scores, torch.Tensor) or not scores.dtype.is_floating_point:
            raise TypeError(f"scores must be a floating-point tensor, got {_describe(scores)}")
        if not isinstance(target, torch.Tensor) or target.dtype.is_floating_point:
            raise TypeError(f"target must be an integer tensor, got {_describe(target)}")
        c = self.num_classes
        if scores.dim() != 4 or scores.shape[1] != c:
            raise ValueError(f"scores must be (B, {c}, H, W), got {tuple(scores.shape)}")
        b, _, h, w = scores.shape
        if tuple(target.shape) != (b, h, w):
            raise ValueError(
                f"target must be (B, H, W) = {(b, h, w)} to match scores, got {tuple(target.shape)}"
            )
        if self.hist.device != scores.device:
            self.hist = self.hist.to(scores.device)
        if h * w == 0:
            return
        target = target.to(scores.device).reshape(b, 1, h * w)
        valid = (target != self.ignore_index) & (target >= 0) & (target < c)
        # Ignored pixels go to a dump row ``c`` that is dropped below: no masked copies.
        rows = torch.where(valid, target, c).to(torch.int32)  # (B, 1, HW)
        flat = scores.reshape(b, c, h * w)
        step = max(1, _CHUNK_ELEMENTS // (b * c))
        counts = sum(
            self._count(flat[:, :, i : i + step], rows[:, :, i : i + step])
            for i in range(0, h * w, step)
        )
        self.hist += counts[: c * c * self.bins].view(c, c, self.bins)

    def _count(self, scores: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """One bincount over ``(true class, score class, bin)``.

        Shape:
            scores ``(B, C, N)``, rows ``(B, 1, N)`` int32 (``C`` = ignored) ->
            ``((C + 1) * C * bins,)`` int64 counts.
        """
        c, nb = self.num_classes, self.bins
        # int32 halves the memory traffic; (C + 1) * C * bins stays far below 2**31.
        index = scores.float().mul(nb).clamp_(0, nb - 1).to(torch.int32)  # bin of each score
        index.add_(rows * (c * nb))
        index.add_(torch.arange(0, c * nb, nb, dtype=torch.int32, device=scores.device)[:, None])
        return torch.bincount(index.reshape(-1), minlength=(c + 1) * c * nb)

    def all_reduce(self) -> None:
        """Sum the histogram over all ranks (no-op when not distributed)."""
        all_reduce_sum(self.hist)

    def pairwise(self) -> torch.Tensor:
        """Binned AUC of every ordered class pair.

        Returns:
            float64 ``(C, C)`` tensor, entry ``[i, j]`` = AUC of the class-``i`` score separating
            class ``i`` from class ``j``; NaN on the diagonal and where either class is absent.
        """
        h = self.hist.to("cpu", torch.float64)
        c = self.num_classes
        counts = h[:, 0, :].sum(-1)  # (C,) pixels per true class
        idx = torch.arange(c)
        pos = h[idx, idx, :]  # (C, bins): class-i score of class-i pixels
        neg = h.permute(1, 0, 2)  # neg[i, j, b]: class-i score of class-j pixels
        below = torch.cumsum(neg, dim=-1) - neg  # negatives strictly in a lower bin
        wins = (pos[:, None, :] * (below + 0.5 * neg)).sum(-1)  # (C, C)
        denom = counts[:, None] * counts[None, :]
        auc = torch.where(denom > 0, wins / denom.clamp(min=1), torch.nan)
        auc.fill_diagonal_(torch.nan)
        return auc

    def compute(self) -> float:
        """Mean binned AUC over ordered pairs of present classes (fraction in ``[0, 1]``).

        Returns:
            The one-vs-one AUC; NaN if fewer than two classes have pixels.
        """
        auc = self.pairwise()
        finite = auc[~torch.isnan(auc)]
        return float(finite.mean()) if finite.numel() else float("nan")


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of dtype {value.dtype}"
    return type(value).__name__
