"""The README's "library in your own training loop" snippet runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

README = Path(__file__).resolve().parents[1] / "README.md"


def _snippet() -> str:
    text = README.read_text()
    section = text[text.index("**The library in your own training loop**") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_training_loop_snippet_trains():
    torch.manual_seed(0)
    c = 5
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, c, 1))
    labels = torch.randint(0, c, (4, 2, 16, 16))
    labels[:, :, :4] = 4  # a tail class present in some batches
    loader = [(torch.randn(2, 3, 16, 16), labels[i]) for i in range(4)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    scope = {"C": c, "tail_ids": [3, 4], "loader": loader, "dev": "cpu", "model": model,
             "opt": opt}  # fmt: skip
    exec(compile(_snippet(), str(README), "exec"), scope)
    assert torch.isfinite(scope["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
