"""Shared fixtures: the official reference data beside the repository, CPU-only defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUCSEG_SHARED", REPO_ROOT.parent / "shared"))
REFERENCE = SHARED / "reference"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Folder of data produced by the official AUCSeg code (``../shared/reference``)."""
    if not REFERENCE.is_dir():
        pytest.skip(
            f"official reference data not found at {REFERENCE}: clone next to shared/ "
            "or set AUCSEG_SHARED to the folder that holds reference/"
        )
    return REFERENCE
