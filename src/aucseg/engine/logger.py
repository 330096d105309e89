"""Training log sinks: console (tqdm progress bar with ETA), JSON Lines and TensorBoard.

Only the main process writes; other ranks get a logger with ``enabled=False`` whose methods
do nothing.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm


def memory_mb(device: torch.device | str | None = None) -> float:
    """Peak memory in MiB: CUDA max allocated on a CUDA device, else the process's peak RSS."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def _format(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3e}"
        return f"{value:.4f}"
    return str(value)


class TrainLogger:
    """Writes scalars to the console, ``WORK_DIR/log.jsonl`` and ``WORK_DIR/tensorboard/``.

    Args:
        work_dir: run folder.
        max_iters: total iterations (progress bar length and ETA).
        start_iter: iteration the run starts from (after a resume).
        enabled: False on non-main ranks: nothing is written.
        tensorboard: also write TensorBoard event files.
        progress: show a tqdm progress bar (console lines are printed either way).
    """

    def __init__(
        self,
        work_dir: str | Path,
        max_iters: int,
        start_iter: int = 0,
        enabled: bool = True,
        tensorboard: bool = True,
        progress: bool = True,
    ) -> None:
        self.enabled = enabled
        self.work_dir = Path(work_dir)
        self._jsonl = None
        self._writer = None
        self._bar = None
        if not enabled:
            return
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = (self.work_dir / "log.jsonl").open("a", encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.work_dir / "tensorboard"))
        if progress:
            self._bar = tqdm(
                total=max_iters, initial=start_iter, desc="train", dynamic_ncols=True, leave=True
            )

    def log(self, iteration: int, scalars: dict[str, Any], tag: str = "train") -> None:
        """Record ``scalars`` at ``iteration`` in every sink (non-finite floats as strings)."""
        if not self.enabled:
            return
        record = {"tag": tag, "iter": iteration, "time": time.time()}
        for key, value in scalars.items():
            value = value.item() if isinstance(value, torch.Tensor) else value
            record[key] = (
                value if not isinstance(value, float) or math.isfinite(value) else str(value)
            )
            if self._writer is not None and isinstance(value, (int, float)):
                self._writer.add_scalar(f"{tag}/{key}", value, iteration)
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        text = "  ".join(f"{k}={_format(v)}" for k, v in scalars.items() if not isinstance(v, list))
        self.info(f"[{tag}] iter {iteration}: {text}")

    def info(self, message: str) -> None:
        """Print a line on the console without breaking the progress bar."""
        if self.enabled:
            tqdm.write(message, file=sys.stderr)

    def advance(self, iteration: int) -> None:
        """Move the progress bar to ``iteration`` completed iterations."""
        if self._bar is not None:
            self._bar.update(iteration - self._bar.n)

    def close(self) -> None:
        """Flush and close every sink."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
