"""Error types shared by every layer.

:class:`InputError` marks a problem the user caused and can fix (a bad config value, a missing
or corrupt file, labels out of range). It is a ``ValueError``, so library callers can keep
catching ``ValueError``; the command line turns it into one line ``aucseg CMD: error: ...``
with exit code 2, and lets every other exception (a bug) show its traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CheckpointError", "InputError", "Interrupted", "NonFiniteError"]


class InputError(ValueError):
    """Bad input from the user; the message states the cause and the fix."""


class CheckpointError(InputError):
    """A checkpoint file that cannot be used: corrupt, truncated, foreign or mismatched."""


class NonFiniteError(RuntimeError):
    """A loss term or the gradient became NaN/Inf; the run stopped before any bad update."""

    def __init__(self, what: str, iteration: int, checkpoint: Path | None) -> None:
        kept = f"the last good checkpoint is {checkpoint}" if checkpoint else "no checkpoint yet"
        super().__init__(
            f"{what} became non-finite at iteration {iteration}; training stopped without "
            f"applying it ({kept}). Lower optimizer.lr, set optimizer.grad_clip, use "
            f"runtime.amp=none or bf16, or set runtime.nonfinite=skip"
        )
        self.what, self.iteration = what, iteration


class Interrupted(Exception):
    """SIGINT/SIGTERM stopped the run after ``iteration``; ``last.pth`` holds that state."""

    def __init__(self, iteration: int, signum: int, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted at iteration {iteration}")
        self.iteration, self.signum, self.checkpoint = iteration, signum, checkpoint
