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

from aucseg.fileio import write_text_atomic


def memory_mb(device: torch.device | str | None = None) -> float:
    """Peak memory in MiB: CUDA max allocated on a CUDA device, else the process's peak RSS."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def _iteration(line: str) -> float:
    try:
        return float(json.loads(line).get("iter", 0))
    except (ValueError, AttributeError):
        return float("inf")  # an unreadable (half-written) line goes too


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
        self._tensorboard, self._progress, self._max_iters = tensorboard, progress, max_iters
        self._start = start_iter

    def start(self, iteration: int) -> None:
        """Open the sinks at ``iteration``: records of later iterations (left by a run that was
        interrupted after its last checkpoint) are dropped, so each iteration is logged once."""
        if not self.enabled or self._jsonl is not None:
            return
        path = self.work_dir / "log.jsonl"
        if path.is_file():
            keep = [ln for ln in path.read_text().splitlines() if _iteration(ln) <= iteration]
            write_text_atomic(path, "".join(f"{ln}\n" for ln in keep))
        self._jsonl = path.open("a", encoding="utf-8")
        if self._tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(
                str(self.work_dir / "tensorboard"), purge_step=iteration + 1
            )
        if self._progress and sys.stderr.isatty():  # no cursor codes in redirected logs
            self._bar = tqdm(
                total=self._max_iters, initial=iteration, desc="train", dynamic_ncols=True
            )

    def log(self, iteration: int, scalars: dict[str, Any], tag: str = "train") -> None:
        """Record ``scalars`` at ``iteration`` in every sink (non-finite floats as strings)."""
        if not self.enabled:
            return
        self.start(self._start)
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
