"""The fast losses equal an O(M^2) pairwise definition; float64 gradcheck of the custom backward."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aucseg.losses import _column_stats, _pairwise, auc_loss

IGNORE = 255


def brute_force(
    logits: torch.Tensor,
    target: torch.Tensor,
    surrogate: str,
    gamma: float,
    transform: str,
    form: str = "pairwise",
) -> torch.Tensor:
    """Loss by enumerating every (positive, negative) pixel pair of every class pair."""
    num_classes = logits.shape[1]
    # sigmoid in the input dtype, so that fp32 inputs share the fp32 rounding of s (1 - s)
    scores = torch.sigmoid(logits).double().movedim(1, -1).reshape(-1, num_classes)
    labels = target.reshape(-1)
    keep = labels != IGNORE
    scores, labels = scores[keep], labels[keep]
    present = [c for c in range(num_classes) if int((labels == c).sum()) > 0]
    k = len(present)
    if k < 2:
        return scores.sum() * 0.0

    def pair_loss(a: torch.Tensor, b: torch.Tensor, n_pos: int) -> torch.Tensor:
        diff = a[:, None] - b[None, :]  # (n_pos, n_neg): every pair
        if surrogate == "square":
            return (0.5 * (gamma - diff) ** 2).mean()
        if surrogate == "exp":
            return torch.exp(-gamma * diff).mean()
        if form == "official":  # linear, negative mean carries an extra 1/N_i
            return gamma - a.mean() + b.mean() / n_pos
        return torch.clamp(gamma - diff, min=0).mean()

    total = torch.zeros((), dtype=torch.float64)
    for i in present:
        a = scores[labels == i, i]
        if transform == "ova":
            total = total + pair_loss(a, scores[labels != i, i], len(a))
            continue
        for c in present:
            if c != i:
                total = total + pair_loss(a, scores[labels == c, i], len(a))
    return total / (k * (k - 1)) if transform == "ovo" else total


@st.composite
def segmentation_batch(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    """Small random logits (B, C, H, W) and labels with some ignored pixels."""
    batch = draw(st.integers(1, 2))
    num_classes = draw(st.integers(2, 5))
    height, width = draw(st.integers(1, 6)), draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.5, 2.0, 6.0]))
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, num_classes, height, width, generator=gen) * scale
    # skewed label distribution: class 0 dominant, the last classes rare
    probs = torch.tensor([2.0**-c for c in range(num_classes)])
    target = torch.multinomial(probs, batch * height * width, True, generator=gen)
    target = target.reshape(batch, height, width)
    ignored = torch.rand(batch, height, width, generator=gen) < draw(st.sampled_from([0, 0.2]))
    return logits, target.masked_fill(ignored, IGNORE)


@settings(max_examples=25, deadline=None)
@given(
    data=segmentation_batch(),
    surrogate=st.sampled_from(["square", "exp", "hinge"]),
    transform=st.sampled_from(["ovo", "ova"]),
    gamma=st.sampled_from([1.0, 0.5, 0.3]),
)
def test_equals_brute_force(
    data: tuple[torch.Tensor, torch.Tensor], surrogate: str, transform: str, gamma: float
) -> None:
    logits, target = data
    fast = auc_loss(logits.double(), target, surrogate, gamma=gamma, transform=transform)
    slow = brute_force(logits.double(), target, surrogate, gamma, transform)
    torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(data=segmentation_batch(), transform=st.sampled_from(["ovo", "ova"]))
def test_official_hinge_equals_its_formula(
    data: tuple[torch.Tensor, torch.Tensor], transform: str
) -> None:
    logits, target = data
    fast = auc_loss(logits.double(), target, "hinge", transform=transform, form="official")
    slow = brute_force(logits.double(), target, "hinge", 1.0, transform, form="official")
    torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(data=segmentation_batch(), surrogate=st.sampled_from(["square", "exp", "hinge"]))
def test_fp32_gradient_equals_brute_force_autograd(
    data: tuple[torch.Tensor, torch.Tensor], surrogate: str
) -> None:
    logits, target = data
    fast_in = logits.clone().requires_grad_()
    slow_in = logits.clone().requires_grad_()
    auc_loss(fast_in, target, surrogate).backward()
    brute_force(slow_in, target, surrogate, 1.0, "ovo").backward()
    scale = float(slow_in.grad.abs().max()) + 1e-30
    torch.testing.assert_close(fast_in.grad, slow_in.grad, rtol=1e-4, atol=1e-6 * scale)


def test_binary_segmentation_equals_brute_force() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2, 5, 6, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 2, (2, 5, 6), generator=gen)
    for surrogate in ("square", "exp", "hinge"):
        fast = auc_loss(logits, target, surrogate)
        slow = brute_force(logits, target, surrogate, 1.0, "ovo")
        torch.testing.assert_close(fast, slow)


@pytest.mark.parametrize(
    ("surrogate", "transform", "form"),
    [
        ("square", "ovo", "pairwise"),
        ("square", "ova", "pairwise"),
        ("exp", "ovo", "pairwise"),
        ("exp", "ova", "pairwise"),
        ("hinge", "ovo", "official"),
        ("hinge", "ova", "official"),
        ("hinge", "ovo", "pairwise"),
        ("hinge", "ova", "pairwise"),
    ],
)
def test_gradcheck_float64(surrogate: str, transform: str, form: str) -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 3, 5, generator=gen, dtype=torch.float64).requires_grad_()
    target = torch.randint(0, 4, (2, 3, 5), generator=gen)
    target[0, 0, :2] = IGNORE

    def fn(x: torch.Tensor) -> torch.Tensor:
        return auc_loss(x, target, surrogate, gamma=0.7, transform=transform, form=form)

    assert torch.autograd.gradcheck(fn, (logits,), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("surrogate", ["square", "hinge"])
def test_chunked_pass_matches_single_chunk(monkeypatch: pytest.MonkeyPatch, surrogate: str) -> None:
    """Small chunks (class blocks, or split rows) give the same loss and gradient."""
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 6, 7, 9, generator=gen)
    target = torch.randint(0, 6, (3, 7, 9), generator=gen)
    target[0, 0] = IGNORE
    results = []
    for budget in (1 << 20, 130, 13):  # one chunk; 2-class blocks; split rows / 1-class blocks
        for module in (_column_stats, _pairwise):
            monkeypatch.setattr(module, "_chunk_budget", lambda numel, device, b=budget: b)
        x = logits.clone().requires_grad_()
        loss = auc_loss(x, target, surrogate)
        loss.backward()
        results.append((loss.detach(), x.grad))
    for loss, grad in results[1:]:
        torch.testing.assert_close(loss, results[0][0])
        torch.testing.assert_close(grad, results[0][1])
