"""Timing and peak-memory helpers shared by the benchmark scripts.

Time. :func:`time_call` runs ``fn()`` ``warmup`` times untimed, then ``repeats`` times, each
call between two ``torch.cuda.synchronize`` on a CUDA device (so the kernels a call queues count
towards that call, not the next one); :class:`Timing` keeps every sample and gives the median
(the representative value) and the best (the least disturbed on a machine shared with other
jobs). :class:`Stopwatch` times one block the same way (e.g. a run of N training iterations).

Memory. CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, and the
part of it above ``memory_allocated`` before the call. CPU (no allocator statistics): the
kernel's resident-set high-water mark ``VmHWM`` (reset by writing 5 to
``/proc/self/clear_refs``) minus ``VmRSS`` before the call. RSS tracks live tensors only when
glibc returns freed memory to the system: call :func:`fix_malloc_threshold` first thing in a
fresh process (before any tensor exists) so that every allocation above 64 KiB is mmap-ed and
unmapped on free.
"""

from __future__ import annotations

import ctypes
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "PeakMemory",
    "Stopwatch",
    "Timing",
    "fix_malloc_threshold",
    "measure_peak",
    "status_kib",
    "synchronize",
    "time_call",
]


def synchronize(device: torch.device | str) -> None:
    """Wait for the work queued on ``device`` (a no-op off CUDA)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated calls.

    Args:
        seconds: one sample per timed call, in call order.
    """

    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median seconds per call."""
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        """Minimum seconds per call."""
        return min(self.seconds)

    @property
    def median_ms(self) -> float:
        """Median milliseconds per call."""
        return 1e3 * self.median

    @property
    def best_ms(self) -> float:
        """Minimum milliseconds per call."""
        return 1e3 * self.best


def time_call(
    fn: Callable[[], Any], device: torch.device | str, warmup: int = 1, repeats: int = 5
) -> Timing:
    """Time ``repeats`` calls of ``fn()`` after ``warmup`` untimed ones (synchronised on CUDA).

    Raises:
        ValueError: ``repeats < 1`` or ``warmup < 0``.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        with Stopwatch(device) as watch:
            fn()
        samples.append(watch.seconds)
    return Timing(tuple(samples))


class Stopwatch:
    """``with Stopwatch(device) as w: ...`` -> ``w.seconds``, synchronised on CUDA at both ends."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.seconds = float("nan")

    def __enter__(self) -> Stopwatch:
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field (e.g. VmRSS, VmHWM) in KiB.

    Raises:
        RuntimeError: the field is not there (not Linux).
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def fix_malloc_threshold() -> None:
    """Make glibc mmap (and unmap on free) every allocation above 64 KiB, so RSS = live memory."""
    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 64 * 1024)
    libc.mallopt(m_trim_threshold, 64 * 1024)


class PeakMemory:
    """Peak memory of the block: ``with PeakMemory(device) as m: ...``.

    After the block, ``m.peak_bytes`` is the absolute peak during it (CUDA: allocated tensors;
    CPU: resident set) and ``m.extra_bytes`` the part above the level at its start. See the
    module docstring for the method.
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.peak_bytes = 0
        self.extra_bytes = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._before = torch.cuda.memory_allocated(self.device)
        else:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # VmHWM := VmRSS
            self._before = status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak_bytes = status_kib("VmHWM") * 1024
        self.extra_bytes = max(0, self.peak_bytes - self._before)


def measure_peak(fn: Callable[[], Any], device: torch.device | str, calls: int = 1) -> PeakMemory:
    """The :class:`PeakMemory` of the call of ``fn()`` with the largest extra memory.

    Raises:
        ValueError: ``calls < 1``.
    """
    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}")
    worst: PeakMemory | None = None
    for _ in range(calls):
        with PeakMemory(device) as mem:
            fn()
        if worst is None or mem.extra_bytes > worst.extra_bytes:
            worst = mem
    return worst  # type: ignore[return-value]
