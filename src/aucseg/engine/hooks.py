"""Periodic work around the training step, one small hook each (detectron2 ``engine/hooks``).

Every hook may define ``before_train``, ``before_step``, ``after_step`` and ``after_train``;
the trainer sets ``hook.trainer``. A hook with a ``state_key`` stores ``state_dict()`` under
that key in every checkpoint and gets it back through ``load_state_dict`` on resume. Order
matters and is the order of :func:`aucseg.engine.build.build_hooks`: learning rate, logging,
checkpoint (always before evaluation at the same iteration, so a failing evaluation never
costs training), evaluation, interrupt.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from aucseg import dist
from aucseg.engine.checkpoint import checkpoint_dir, save_atomic
from aucseg.engine.logger import TrainLogger, memory_mb
from aucseg.engine.schedule import PolyWarmupScheduler
from aucseg.engine.trainer import Interrupted, NonFiniteError
from aucseg.errors import InputError

__all__ = [
    "BankStatsHook",
    "CheckpointHook",
    "EvalHook",
    "HookBase",
    "InterruptHook",
    "LRSchedulerHook",
    "LoggerHook",
]


class HookBase:
    """No-op base: override the stages you need."""

    trainer: Any = None
    state_key: str | None = None

    def before_train(self) -> None:
        """Called once before the first step."""

    def before_step(self) -> None:
        """Called before every step (``trainer.iteration`` steps are done)."""

    def after_step(self) -> None:
        """Called after every step (``trainer.iteration`` counts it)."""

    def after_train(self) -> dict[str, Any] | None:
        """Called once at the end, also after an error; may return summary entries."""
        return None

    def state_dict(self) -> Any:
        """State stored under ``state_key`` in checkpoints."""
        return None

    def load_state_dict(self, state: Any) -> None:
        """Restore :meth:`state_dict` output."""

    def due(self, interval: int) -> bool:
        """True every ``interval`` iterations and at the last one."""
        it = self.trainer.iteration
        return interval > 0 and (it % interval == 0 or it == self.trainer.end)


class LRSchedulerHook(HookBase):
    """Sets the learning rate of every group from the iteration before each step."""

    state_key = "scheduler"

    def __init__(self, scheduler: PolyWarmupScheduler) -> None:
        self.scheduler = scheduler

    def before_step(self) -> None:
        """Set the lr of the coming step."""
        self.scheduler.step_to(self.trainer.iteration)

    def state_dict(self) -> dict:
        """The scheduler state."""
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore the iteration; the base learning rates stay those of the current config."""
        base = list(self.scheduler.base_lrs)
        self.scheduler.load_state_dict(state)
        self.scheduler.set_base_lrs(base)


class LoggerHook(HookBase):
    """Every ``interval`` steps: the mean loss terms, lr per group, throughput and memory.

    Loss values stay on the device between log steps; reading them here is the step's only
    host sync. Also reads the trainer's NaN/Inf guard. The means are over the steps whose
    terms were finite (with ``nonfinite="skip"`` the skipped steps are counted instead, also
    those a checkpoint's guard read found first).
    """

    def __init__(self, logger: TrainLogger, interval: int, group_names: list[str]) -> None:
        self.logger, self.interval, self.group_names = logger, interval, group_names
        self.last_log: dict[str, Any] = {}
        self._skipped_logged = 0

    def before_train(self) -> None:
        """Start the first window."""
        self._reset()
        self.logger.start(self.trainer.iteration)

    def _reset(self) -> None:
        self._sum: torch.Tensor | None = None
        self._count: torch.Tensor | None = None  # finite values per term
        self._tic = time.perf_counter()
        self.trainer.num_images = 0
        self._skipped_logged = self.trainer.skipped_steps

    def wants_log(self, iteration: int) -> bool:
        """Whether ``iteration`` is a log step (input checks also run there)."""
        return iteration % self.interval == 0 or iteration == self.trainer.end

    def after_step(self) -> None:
        """Accumulate on the device; log at log steps."""
        t = self.trainer
        terms = torch.stack(list(t.step_terms.values()))  # (T,)
        finite = torch.isfinite(terms)
        terms = torch.where(finite, terms, 0.0)
        self._sum = terms if self._sum is None else self._sum + terms
        self._count = finite.long() if self._count is None else self._count + finite
        self.logger.advance(t.iteration)
        if self.wants_log(t.iteration):
            t.check_health()
            self.last_log = self._scalars(t.skipped_steps - self._skipped_logged)
            self.logger.log(t.iteration, self.last_log)
            self._reset()

    def _scalars(self, skipped: int) -> dict[str, Any]:
        t = self.trainer
        # a window of skipped steps only has no mean: NaN
        means = (self._sum / self._count).tolist()
        scalars: dict[str, Any] = dict(zip(t.names, means, strict=True))
        scalars["loss"] = sum(means)
        for name, group in zip(self.group_names, t.optimizer.param_groups, strict=False):
            scalars[f"lr/{name}"] = group["lr"]
        elapsed = max(time.perf_counter() - self._tic, 1e-9)
        scalars["images_per_s"] = t.num_images * dist.get_world_size() / elapsed
        scalars["memory_mb"] = memory_mb(t.device)
        if t.options.amp == "fp16":
            scalars["loss_scale"] = float(t.scaler.get_scale())
        if skipped:
            scalars["skipped_steps"] = skipped
        return scalars

    def after_train(self) -> dict[str, Any]:
        """Close the sinks."""
        self.logger.close()
        return {"last_log": self.last_log}


class BankStatsHook(HookBase):
    """At log steps, the memory bank's statistics (objects pasted, classes stored, ...)."""

    def __init__(self, bank: Any, logger: TrainLogger, interval: int) -> None:
        self.bank, self.logger, self.interval = bank, logger, interval

    def after_step(self) -> None:
        """Log and reset the bank statistics."""
        if not self.due(self.interval):
            return
        stats = {k: v for k, v in self.bank.stats().items() if isinstance(v, (int, float))}
        self.logger.log(self.trainer.iteration, stats, tag="bank")
        self.bank.reset_stats()


class CheckpointHook(HookBase):
    """Writes ``checkpoints/last.pth`` every ``interval`` iterations and at the end (rank 0).

    Before a save the NaN/Inf guard is read and the parameters are checked, so no checkpoint
    ever holds a diverged model.
    """

    def __init__(self, work_dir: str | Path, interval: int, keep_iter: bool = False) -> None:
        self.dir = checkpoint_dir(work_dir)
        self.interval, self.keep_iter = interval, keep_iter

    def save(self, *names: str) -> Path | None:
        """Write the trainer state as each of ``names`` (rank 0 writes); return the first path."""
        t = self.trainer
        t.check_health()
        if not t.parameters_finite():
            raise NonFiniteError("a model parameter", t.iteration, t.last_checkpoint)
        if dist.is_main_process():  # one writer; every rank knows the path
            state = t.state_dict()
            for name in names:
                save_atomic(state, self.dir / name)
        return self.dir / names[0]

    def after_step(self) -> None:
        """Save at checkpoint iterations; every rank waits for rank 0."""
        if not self.due(self.interval):
            return
        it = self.trainer.iteration
        names = ["last.pth"] + ([f"iter_{it:07d}.pth"] if self.keep_iter else [])
        path = self.save(*names)
        if path is not None:
            self.trainer.last_checkpoint = path
        dist.barrier()


class EvalHook(HookBase):
    """Evaluates every ``interval`` iterations and at the end; keeps ``best.pth``.

    Args:
        evaluate_fn: ``f(model) -> metrics`` (percent values).
        interval: iterations between evaluations (> 0).
        best_metric: the metric that selects ``best.pth`` (higher is better).
        checkpointer: writes ``best.pth``.
        logger: records the ``val`` scalars.
    """

    state_key = "best_metric"

    def __init__(
        self,
        evaluate_fn: Callable[[Any], dict[str, Any]],
        interval: int,
        best_metric: str,
        checkpointer: CheckpointHook,
        logger: TrainLogger,
    ) -> None:
        self.evaluate_fn, self.interval, self.metric = evaluate_fn, interval, best_metric
        self.checkpointer, self.logger = checkpointer, logger
        self.best: dict[str, Any] | None = None

    def after_step(self) -> None:
        """Evaluate at evaluation iterations."""
        if self.due(self.interval):
            self.evaluate()

    def evaluate(self) -> dict[str, Any]:
        """Run ``evaluate_fn`` in eval mode, log, and update ``best.pth`` on improvement."""
        t = self.trainer
        t.model.eval()
        try:
            results = self.evaluate_fn(t.model)
        finally:
            t.model.train()
        value = results.get(self.metric)
        if value is None:
            raise InputError(
                f"evaluation.best_metric {self.metric!r} is missing or null in the evaluation "
                f"results (no class groups?); set data.class_groups or use best_metric mIoU"
            )
        self.logger.log(t.iteration, _scalars(results), tag="val")
        if math.isfinite(value) and (self.best is None or value > self.best["value"]):
            self.best = {"name": self.metric, "value": float(value), "iteration": t.iteration}
            self.checkpointer.save("best.pth")
        return results

    def state_dict(self) -> dict[str, Any] | None:
        """The best value so far."""
        return self.best

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the best value."""
        self.best = state

    def after_train(self) -> dict[str, Any]:
        """The best value for the summary."""
        return {"best_metric": self.best}


def _scalars(results: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in results.items() if isinstance(v, (int, float))}


class InterruptHook(HookBase):
    """SIGINT/SIGTERM (Ctrl-C, a cluster's preemption) end the run at a step boundary:
    ``last.pth`` is written at the current iteration and :class:`Interrupted` is raised."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, checkpointer: CheckpointHook) -> None:
        self.checkpointer = checkpointer
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # a second Ctrl-C: stop now, the last save stands
            raise KeyboardInterrupt
        self.signum = signum

    def before_train(self) -> None:
        """Install the handlers (main thread only; elsewhere signals keep their default)."""
        try:
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        except ValueError:  # not the main thread
            self._previous.clear()

    def after_step(self) -> None:
        """Save and stop when a signal arrived during the step."""
        if self.signum is None:
            return
        t = self.trainer
        path = self.checkpointer.save("last.pth")
        if path is not None:
            t.last_checkpoint = path
        raise Interrupted(t.iteration, self.signum, t.last_checkpoint)

    def after_train(self) -> None:
        """Restore the previous handlers."""
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
