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

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aucseg import __version__
from aucseg.errors import CheckpointError
from aucseg.fileio import atomic_write


def checkpoint_dir(work_dir: str | Path) -> Path:
    """``WORK_DIR/checkpoints``."""
    return Path(work_dir) / "checkpoints"


def save_atomic(obj: dict[str, Any], path: str | Path) -> Path:
    """Write ``obj`` with ``torch.save`` atomically (see :func:`aucseg.fileio.atomic_write`).

    A crash at any point leaves either the previous file or the complete new one.
    """
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint_file(
    path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict:
    """Load a checkpoint dict with ``torch.load(weights_only=True)``.

    ``mmap=True`` maps the tensors instead of reading them, for callers that only need the
    plain entries (the config, the iteration) of a large file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: a directory, a corrupt or truncated file, or not a checkpoint dict.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory; give the .pth file in it")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # UnpicklingError, RuntimeError (zip), EOFError, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt, truncated, or not written by "
            f"torch.save; {type(exc).__name__}: {first})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint dict")
    return state


def check_training_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Raise CheckpointError unless ``state`` is an aucseg training checkpoint (for resume)."""
    missing = [k for k in ("model", "optimizer", "iteration") if state.get(k) is None]
    if missing:
        raise CheckpointError(
            f"{path} is not an aucseg training checkpoint (no {', '.join(missing)}); resume "
            f"from a last.pth written by aucseg train, or start a new run with "
            f"model.pretrained={path} to use its weights"
        )


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
