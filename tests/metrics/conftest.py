"""Results dicts from real confusion matrices on small random tensors."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch

from aucseg.metrics import ConfusionMatrix, summarize

NAMES = ["road", "car", "bike", "rider", "traffic sign"]
GROUPS = {"head": [0, 1], "middle": [2], "tail": [3, 4]}


def random_results(
    seed: int,
    names: Sequence[str] = NAMES,
    groups: dict[str, list[int]] | None = GROUPS,
    absent: Sequence[int] = (),
    pixels: int = 400,
) -> dict:
    """``summarize`` of a confusion matrix filled with seeded random labels and predictions.

    Predictions agree with the labels on about half of the pixels so that IoUs differ by seed;
    classes in ``absent`` occur neither in the labels nor in the predictions (IoU ``None``).
    """
    gen = torch.Generator().manual_seed(seed)
    present = torch.tensor([c for c in range(len(names)) if c not in absent])
    target = present[torch.randint(len(present), (pixels,), generator=gen)]
    noise = present[torch.randint(len(present), (pixels,), generator=gen)]
    keep = torch.rand(pixels, generator=gen) < 0.5
    pred = torch.where(keep, target, noise)
    target[:7] = 255  # a few ignored pixels
    cm = ConfusionMatrix(len(names))
    cm.update(pred, target)
    return summarize(cm, names, groups)


@pytest.fixture
def make_results() -> Callable[..., dict]:
    """The :func:`random_results` factory."""
    return random_results
