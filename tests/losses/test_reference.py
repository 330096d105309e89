"""The AUC losses equal the official implementation on its recorded cases (values and grads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aucseg.losses import build_loss

CASES = [
    (case, surrogate, transform, gamma)
    for case in ("c0", "c1", "c2", "c3")
    for surrogate in ("square", "exp", "hinge")
    for transform in ("ovo", "ova")
    for gamma in ((1.0, 0.5) if surrogate != "hinge" else (1.0,))
]


@pytest.fixture(scope="module")
def cases(reference_dir: Path) -> dict[str, np.ndarray]:
    path = reference_dir / "auc_loss_cases.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize(("case", "surrogate", "transform", "gamma"), CASES)
def test_matches_official_loss_and_gradient(
    cases: dict[str, np.ndarray], case: str, surrogate: str, transform: str, gamma: float
) -> None:
    logits = torch.from_numpy(cases[f"{case}_logits"]).requires_grad_()
    target = torch.from_numpy(cases[f"{case}_target"])
    key = f"{case}_{surrogate}_{transform}_g{gamma}"
    extra = {"form": "official"} if surrogate == "hinge" else {}
    loss_fn = build_loss(
        f"{surrogate}_auc", logits.shape[1], gamma=gamma, transform=transform, **extra
    )
    loss = loss_fn(logits, target)
    loss.backward()
    assert loss.dim() == 0
    np.testing.assert_allclose(loss.item(), cases[f"{key}_loss"], rtol=1e-4)
    ref_grad = cases[f"{key}_grad"]
    atol = 1e-5 * float(np.abs(ref_grad).max())
    np.testing.assert_allclose(logits.grad.numpy(), ref_grad, rtol=1e-3, atol=atol)


def test_true_hinge_differs_from_official(cases: dict[str, np.ndarray]) -> None:
    """The pairwise hinge is a different loss; the official one is only behind form='official'."""
    logits = torch.from_numpy(cases["c0_logits"])
    target = torch.from_numpy(cases["c0_target"])
    pairwise = build_loss("hinge_auc", logits.shape[1])(logits, target)
    assert abs(pairwise.item() - float(cases["c0_hinge_ovo_g1.0_loss"])) > 1e-2
