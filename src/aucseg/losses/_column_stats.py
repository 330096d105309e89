"""Weighted per-class sums of sigmoid scores with a hand-written, memory-lean backward.

This is the only O(M·C) part of the separable AUC losses. The forward streams over chunks of
pixels and keeps nothing but the logits (by reference); the backward recomputes the sigmoid chunk
by chunk and writes the gradient once, so peak extra memory stays about one logits tensor.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

# Elements of a chunk processed at once. One chunk-size fp32 temporary is alive at a time, so
# on CPU chunks are a quarter of the logits (at least this many elements): few parallel regions,
# about 0.25x the logits of temporaries. On GPUs a fixed size keeps the temporary negligible.
_CHUNK_ELEMS_CPU = 1 << 18
_CHUNK_ELEMS_GPU = 1 << 23

# Number of reduced functions psi_k(s) per surrogate (see ``_accumulate``).
NUM_PSI = {"square": 2, "exp": 1, "hinge": 1}


def _chunk_budget(numel: int, device: torch.device) -> int:
    """Elements per chunk for a logits tensor of ``numel`` elements on ``device``."""
    if device.type == "cpu":  # few large chunks: each op is a parallel region on CPU
        return max(_CHUNK_ELEMS_CPU, numel // 4)
    return _CHUNK_ELEMS_GPU


def _chunks(shape: torch.Size, device: torch.device) -> Iterator[tuple[int, slice, slice]]:
    """Yield (batch index, class slice, pixel slice) covering a (B, C, L) tensor in chunks.

    Chunks are whole rows (blocks of classes over all pixels of a sample), which are contiguous
    in memory, unless one row alone exceeds the budget; then rows are split along the pixels.
    This bounds temporary memory; the work per chunk is vectorised over its classes and pixels.
    """
    batch, num_classes, length = shape
    budget = _chunk_budget(batch * num_classes * length, device)
    rows = max(1, budget // max(1, length))
    cols = max(1, min(length, budget) if rows == 1 else length)  # >= 1: L may be 0
    for b in range(batch):
        for c0 in range(0, num_classes, rows):
            for p0 in range(0, length, cols):
                yield b, slice(c0, c0 + rows), slice(p0, p0 + cols)


def _accumulate(
    out: torch.Tensor, s: torch.Tensor, v: torch.Tensor, surrogate: str, gamma: float
) -> None:
    """Add sum_j v_j psi_k(s[:, j]) to ``out[k]`` for each psi_k of the surrogate (in place).

    psi: square -> (s, s^2); exp -> exp(gamma*s); hinge (official) -> s. ``s`` is overwritten.

    Shape:
        out (K_psi, c) (a view), s (c, n) scores, v (n,) pixel weights.
    """
    if surrogate == "square":
        out[0] += torch.mv(s, v)
        out[1] += torch.mv(s.mul_(s), v)
    elif surrogate == "exp":
        out[0] += torch.mv(s.mul_(gamma).exp_(), v)
    else:
        out[0] += torch.mv(s, v)


def _chunk_grad(
    s: torch.Tensor,
    v: torch.Tensor,
    grad_out: torch.Tensor,
    surrogate: str,
    gamma: float,
    out: torch.Tensor,
) -> None:
    """Write into ``out`` the gradient w.r.t. a logits chunk of <grad_out, R> (R as forward).

    Shape:
        s (C, n), v (n,), grad_out (K_psi, C), out (C, n) (a view of the full gradient).
    """
    # d/ds goes straight into ``out`` when the dtypes agree (no temporary), else via a buffer.
    g = out if out.dtype == s.dtype else torch.empty_like(s)
    g0 = grad_out[0].unsqueeze(1)  # (c, 1)
    if surrogate == "square":  # d/ds = g0 + 2 g1 s
        torch.addcmul(g0, s, 2.0 * grad_out[1].unsqueeze(1), out=g).mul_(v)
    elif surrogate == "exp":  # d/ds = g0 gamma exp(gamma s)
        torch.mul(s, gamma, out=g).exp_().mul_(gamma * g0).mul_(v)
    else:  # d/ds = g0
        torch.mul(g0, v, out=g)
    # Chain rule through the sigmoid in one fused pass: out = g * (1 - s) * s, cast on write.
    torch.ops.aten.sigmoid_backward.grad_input(g, s, grad_input=out)


def _sigmoid(chunk: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """sigmoid of a logits chunk as a new ``dtype`` tensor (one pass when dtypes agree)."""
    return torch.sigmoid(chunk) if chunk.dtype == dtype else chunk.to(dtype).sigmoid_()


class ColumnStats(torch.autograd.Function):
    """R[k, c] = sum_j v_j psi_k(sigmoid(z[j, c])) and a[j] = sigmoid(z[j, label_j])."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        logits: torch.Tensor,
        labels: torch.Tensor,
        weights: torch.Tensor,
        surrogate: str,
        gamma: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stream over pixel chunks; accumulate in ``weights.dtype`` (fp32 or fp64).

        Shape:
            logits (B, C, L), labels (B, L) int64 in [0, C), weights (B, L)
            -> R (K_psi, C), a (B, L).
        """
        acc = weights.dtype
        stats = torch.zeros(NUM_PSI[surrogate], logits.shape[1], dtype=acc, device=logits.device)
        for b, cls, pix in _chunks(logits.shape, logits.device):
            s = _sigmoid(logits[b, cls, pix], acc)  # (c, n)
            _accumulate(stats[:, cls], s, weights[b, pix], surrogate, gamma)
        label_logits = logits.gather(1, labels.unsqueeze(1)).squeeze(1)  # (B, L)
        scores = label_logits.to(acc).sigmoid()
        ctx.save_for_backward(logits, labels, weights, scores)
        ctx.surrogate, ctx.gamma = surrogate, gamma
        return stats, scores

    @staticmethod
    @once_differentiable
    def backward(
        ctx: FunctionCtx, grad_stats: torch.Tensor, grad_scores: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None, None, None]:
        """Recompute sigmoid per chunk, write d/dz once, then add the label-column term."""
        logits, labels, weights, scores = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        acc = weights.dtype
        grad_stats = grad_stats.to(acc)
        grad = torch.empty_like(logits)
        for b, cls, pix in _chunks(logits.shape, logits.device):
            s = _sigmoid(logits[b, cls, pix], acc)
            out = grad[b, cls, pix]
            _chunk_grad(s, weights[b, pix], grad_stats[:, cls], ctx.surrogate, ctx.gamma, out)
        label_grad = grad_scores.to(acc) * scores * (1.0 - scores)  # (B, L)
        grad.scatter_add_(1, labels.unsqueeze(1), label_grad.unsqueeze(1).to(grad.dtype))
        return grad, None, None, None, None


class AllReduceSum(torch.autograd.Function):
    """Sum a statistics tensor over processes; backward scales by the world size.

    Every rank computes the same global loss from the summed statistics, so the gradient of the
    global loss w.r.t. the local statistics equals the incoming gradient. It is multiplied by the
    world size because DDP averages parameter gradients over ranks.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, stats: torch.Tensor, world_size: int) -> torch.Tensor:
        """All-reduce a copy of ``stats`` (sum)."""
        out = stats.clone()
        torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM)
        ctx.world_size = world_size
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Local statistics receive ``world_size`` x the global gradient."""
        return grad * ctx.world_size, None
