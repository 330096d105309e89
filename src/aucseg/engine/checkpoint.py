"""Training checkpoints: one explicit dict, written atomically, loadable with weights_only=True.

Layout::

    {"model": unwrapped state_dict, "optimizer": ..., "scheduler": ..., "scaler": ...,
     "iteration": int, "rng": {...}, "memory_bank": dict | None, "best_metric": {...} | None,
     "config": resolved config (plain dict), "meta": {"aucseg_version", "time", ...}}

Every value is a tensor or a plain Python container/scalar, so ``torch.load(weights_only=True)``
accepts the file. Files live in ``WORK_DIR/checkpoints/``: ``last.pth``, ``best.pth`` and
optionally ``iter_XXXXXXX.pth``.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aucseg import __version__


def checkpoint_dir(work_dir: str | Path) -> Path:
    """``WORK_DIR/checkpoints``."""
    return Path(work_dir) / "checkpoints"


def save_atomic(obj: dict[str, Any], path: str | Path) -> Path:
    """Write ``obj`` with ``torch.save`` to a temp file beside ``path``, fsync, then rename.

    A crash at any point leaves either the previous file or the complete new one, never a
    half-written ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a checkpoint dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, expected a checkpoint dict")
    return state


def get_rng_state() -> dict[str, Any]:
    """RNG states of Python, NumPy, torch CPU and every CUDA device as tensors/lists."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`get_rng_state` output (CUDA states only where devices exist)."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), cached))
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def make_checkpoint(
    model_state: dict[str, torch.Tensor],
    iteration: int,
    optimizer_state: dict | None = None,
    scheduler_state: dict | None = None,
    scaler_state: dict | None = None,
    memory_bank_state: dict | None = None,
    best_metric: dict | None = None,
    config: dict | None = None,
    rng: dict | None = None,
    meta: dict | None = None,
) -> dict[str, Any]:
    """Assemble the checkpoint dict (``rng`` defaults to the current RNG states)."""
    return {
        "model": {k: v.detach().cpu() for k, v in model_state.items()},
        "optimizer": optimizer_state,
        "scheduler": scheduler_state,
        "scaler": scaler_state,
        "iteration": int(iteration),
        "rng": get_rng_state() if rng is None else rng,
        "memory_bank": memory_bank_state,
        "best_metric": best_metric,
        "config": config,
        "meta": {"aucseg_version": __version__, "time": time.time(), **(meta or {})},
    }


def resolve_resume_path(resume: str | Path | bool, work_dir: str | Path) -> Path:
    """The checkpoint ``--resume`` refers to: the given file, or ``WORK_DIR/checkpoints/last.pth``.

    Raises:
        FileNotFoundError: the file does not exist (the message names where it was looked for).
    """
    if resume is True or resume in ("", "last", "auto"):
        path = checkpoint_dir(work_dir) / "last.pth"
    else:
        path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(
            f"cannot resume: {path} does not exist; pass --resume PATH to a checkpoint or "
            f"start without --resume"
        )
    return path
