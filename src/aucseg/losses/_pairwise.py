"""Exact pairwise hinge AUC loss by sorting, with its gradient formed in the forward pass.

In class column i a positive with score a enters as u = a - gamma and a negative as its score b.
After sorting, the pairs of a negative with a positive loss (b > u) are exactly the positives
before it, so its contribution is ``count_before * b - sum_before(u)``, and the gradient is
``count_before`` for a negative and minus the weight of the negatives after it for a positive.
Columns are processed in blocks of classes (all pixels, all batch items at once) to bound memory;
only the logits-size gradient is kept for backward.
"""

from __future__ import annotations

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from aucseg.losses._column_stats import _chunk_budget


def _block_loss_and_grad(
    scores: torch.Tensor,
    is_pos: torch.Tensor,
    beta: torch.Tensor,
    inv_n: torch.Tensor,
    gamma: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over the block's classes of inv_n * sum_pairs beta * max(0, gamma - a + b), and d/ds.

    Shape:
        scores, is_pos, beta (c, P) (beta = negative weights, 0 for positives and ignored),
        inv_n (c,) -> loss (), grad (c, P).
    """
    keyed = scores - gamma * is_pos.to(scores.dtype)
    ordered, order = torch.sort(keyed, dim=1)
    pos = is_pos.gather(1, order).to(torch.float64)  # prefix sums in fp64: long mixed-sign sums
    beta_s = beta.gather(1, order)
    count_before = torch.cumsum(pos, dim=1) - pos
    u = ordered.to(torch.float64) * pos
    sum_before = torch.cumsum(u, dim=1) - u
    per_neg = beta_s * (count_before * ordered - sum_before).to(scores.dtype)  # 0 for positives
    loss = (inv_n * per_neg.sum(dim=1)).sum()
    beta_after = beta_s.sum(dim=1, keepdim=True) - torch.cumsum(beta_s.to(torch.float64), dim=1)
    grad_sorted = torch.where(
        pos > 0, -beta_after.to(scores.dtype), beta_s * count_before.to(scores.dtype)
    )
    grad = torch.empty_like(scores).scatter_(1, order, grad_sorted * inv_n[:, None])
    return loss, grad


class PairwiseHinge(torch.autograd.Function):
    """factor * sum_i inv_n[i] * sum_{pos m, neg n} beta_n max(0, gamma - s[m,i] + s[n,i])."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        logits: torch.Tensor,
        labels: torch.Tensor,
        beta: torch.Tensor,
        neg_scale: torch.Tensor,
        inv_n: torch.Tensor,
        factor: torch.Tensor,
        gamma: float,
    ) -> torch.Tensor:
        """Loss; the gradient w.r.t. the logits is computed here and saved.

        Shape:
            logits (B, C, L), labels (B, L) class ids (-1 for ignored pixels), beta (B, L)
            weights of negatives (0 for ignored), neg_scale (C,), inv_n (C,), factor () -> ().
        """
        batch, num_classes, length = logits.shape
        acc = inv_n.dtype
        pixels = batch * length
        rows = max(1, _chunk_budget(logits.numel(), logits.device) // (4 * max(1, pixels)))
        flat_labels = labels.reshape(1, -1)
        flat_beta = beta.reshape(1, -1)
        total = torch.zeros((), dtype=acc, device=logits.device)
        grad = torch.empty_like(logits)
        for c0 in range(0, num_classes, rows):
            cls = slice(c0, min(c0 + rows, num_classes))
            c = cls.stop - cls.start  # explicit sizes in reshapes: P may be 0
            s = logits[:, cls].to(acc).sigmoid().transpose(0, 1).reshape(c, pixels)  # (c, P)
            classes = torch.arange(cls.start, cls.stop, device=logits.device).unsqueeze(1)
            is_pos = flat_labels == classes  # (c, P)
            block_beta = torch.where(is_pos, 0.0, flat_beta * neg_scale[cls, None])
            loss, g = _block_loss_and_grad(s, is_pos, block_beta, inv_n[cls], gamma)
            total = total + loss
            g = torch.ops.aten.sigmoid_backward(g * factor, s)  # (c, P)
            grad[:, cls] = g.reshape(c, batch, length).transpose(0, 1)
        ctx.save_for_backward(grad)
        return factor * total

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """Scale the saved gradient."""
        (grad,) = ctx.saved_tensors
        return (grad * grad_out.to(grad.dtype), None, None, None, None, None, None)
