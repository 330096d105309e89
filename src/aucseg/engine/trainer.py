"""Iteration-based training loop with resumable data order, AMP, accumulation and DDP.

The loop is deterministic given a seed: the data stream is a seeded sampler whose position is
derived from the iteration, each sample's augmentation randomness is seeded from its position
in the stream, and the checkpoint stores every RNG state. A run resumed from ``last.pth``
therefore reproduces the uninterrupted run bit for bit on CPU (single process).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Sampler

from aucseg import dist
from aucseg.engine.checkpoint import (
    checkpoint_dir,
    load_checkpoint_file,
    make_checkpoint,
    save_atomic,
    set_rng_state,
)
from aucseg.engine.logger import TrainLogger, memory_mb
from aucseg.engine.schedule import PolyWarmupScheduler

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN/Inf; training stopped without writing a checkpoint."""

    def __init__(self, term: str, iteration: int, value: float, checkpoint: Path | None) -> None:
        kept = f"the last good checkpoint is {checkpoint}" if checkpoint else "no checkpoint yet"
        super().__init__(
            f"loss term '{term}' is {value} at iteration {iteration}; training stopped "
            f"({kept}). Lower optimizer.lr, use runtime.amp=none/bf16 or check the labels."
        )
        self.term = term
        self.iteration = iteration


# ----------------------------------------------------------------------------- data order


def sample_seed(seed: int, position: int, stream: int = 0) -> int:
    """A 32-bit seed derived from ``(seed, stream, position)``, e.g. of the sample at global
    stream ``position`` (independent of workers and restarts). ``stream`` separates uses."""
    entropy = [int(seed) % 2**63, int(stream), int(position)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class ResumableSampler(Sampler):
    """Endless shuffled stream of ``(index, sample_seed)`` that can start at any position.

    The global stream concatenates permutations of ``range(size)`` (epoch ``e`` shuffled with
    seed ``(seed, e)``); rank ``r`` of ``W`` takes global positions ``r, r+W, r+2W, ...``.

    Args:
        size: dataset length.
        seed: run seed.
        shuffle: permute each epoch (else sequential order).
        rank: this process's rank.
        world_size: number of processes.
        start: number of samples this rank has already consumed (``iteration * accumulation
            * batch_size`` on resume).
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
    ) -> None:
        if size < 1:
            raise ValueError(f"the training dataset is empty (size {size}); check data.root")
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world_size, self.start = rank, world_size, start

    def _permutation(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        gen = torch.Generator().manual_seed(sample_seed(self.seed, epoch, stream=1))
        return torch.randperm(self.size, generator=gen)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        pos, epoch, perm = self.start, -1, None
        while True:
            global_pos = pos * self.world_size + self.rank
            e, offset = divmod(global_pos, self.size)
            if e != epoch:
                epoch, perm = e, self._permutation(e)
            yield int(perm[offset]), sample_seed(self.seed, global_pos)
            pos += 1

    def __len__(self) -> int:  # endless; DataLoader only needs a length for progress estimates
        return 2**62


class SeededSamples(Dataset):
    """Wraps a dataset so that item ``(index, seed)`` is produced under that seed.

    Python, NumPy and torch RNGs are seeded before the item is loaded and restored afterwards,
    so random augmentations depend only on the sample's stream position.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


def make_train_loader(
    dataset: Dataset,
    batch_size: int,
    consumed_batches: int = 0,
    seed: int = 0,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    worker_init_fn: Callable[[int], None] | None = None,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """Endless training DataLoader continuing after ``consumed_batches`` batches of this rank.

    Batches are deterministic functions of (seed, stream position), whatever ``num_workers``.

    Returns:
        A DataLoader over :class:`SeededSamples` driven by a :class:`ResumableSampler`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    sampler = ResumableSampler(
        len(dataset),  # type: ignore[arg-type]
        seed=seed,
        rank=rank,
        world_size=world_size,
        start=consumed_batches * batch_size,
    )
    return torch.utils.data.DataLoader(
        SeededSamples(dataset),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=True,
        worker_init_fn=worker_init_fn,
        pin_memory=pin_memory,
        persistent_workers=False,
        # an explicit generator keeps the loader from drawing on the global torch RNG
        generator=torch.Generator().manual_seed(sample_seed(seed, 0, stream=2)),
    )


# ----------------------------------------------------------------------------- trainer


class Trainer:
    """Runs ``max_iters`` optimisation steps, logging, evaluating and checkpointing.

    Args:
        model: the unwrapped segmentor ``(B,3,H,W) -> (B,C,H,W)`` logits at input size,
            already on ``device``; it is wrapped in DDP when a process group is initialised.
        losses: modules ``(logits, target) -> scalar`` (weighted) with a ``loss_name``.
        optimizer: optimizer over ``model``'s parameters.
        scheduler: sets the lr from the iteration.
        loader_factory: ``f(consumed_batches) -> iterable of batches`` (dicts with
            ``"image"`` (B,3,H,W) float and ``"label"`` (B,H,W) int64) that continues the data
            stream after ``consumed_batches`` batches of this rank.
        max_iters: total optimisation steps.
        work_dir: run folder (checkpoints/, log.jsonl, tensorboard/).
        device: compute device.
        amp: ``"none"``, ``"bf16"`` (autocast) or ``"fp16"`` (autocast + GradScaler).
        accumulation_steps: micro-batches per optimisation step.
        grad_clip: max gradient L2 norm, or None.
        memory_bank: batch-level callable ``(images, labels) -> (images, labels)`` with
            ``state_dict``/``load_state_dict``/``stats``/``reset_stats``, or None.
        evaluate_fn: ``f(model) -> metrics dict`` (percent values), or None.
        eval_interval: evaluate every N iterations (and at the end); 0 = never.
        best_metric: metric that selects ``best.pth`` (higher is better).
        log_interval: log every N iterations.
        checkpoint_interval: write ``last.pth`` every N iterations (and at the end).
        keep_iter_checkpoints: also keep ``iter_XXXXXXX.pth`` at every checkpoint.
        config: resolved config (plain dict) stored in every checkpoint.
        tensorboard: write TensorBoard events.
        progress: show a progress bar.
        find_unused_parameters: passed to DDP.
        seed: run seed; ranks > 0 derive their RNG state from it when resuming.
    """

    def __init__(
        self,
        model: nn.Module,
        losses: Sequence[nn.Module],
        optimizer: torch.optim.Optimizer,
        scheduler: PolyWarmupScheduler,
        loader_factory: Callable[[int], Iterable[dict[str, Any]]],
        max_iters: int,
        work_dir: str | Path,
        *,
        device: str | torch.device = "cpu",
        amp: str = "none",
        accumulation_steps: int = 1,
        grad_clip: float | None = None,
        memory_bank: Any = None,
        evaluate_fn: Callable[[nn.Module], dict[str, Any]] | None = None,
        eval_interval: int = 0,
        best_metric: str = "mIoU",
        log_interval: int = 50,
        checkpoint_interval: int = 1000,
        keep_iter_checkpoints: bool = False,
        config: dict | None = None,
        tensorboard: bool = True,
        progress: bool = True,
        find_unused_parameters: bool = False,
        seed: int = 0,
    ) -> None:
        if amp not in AMP_DTYPES:
            raise ValueError(f"amp must be one of {list(AMP_DTYPES)}, got {amp!r}")
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be >= 1, got {accumulation_steps}")
        if not losses:
            raise ValueError("at least one loss module is required")
        self.device = torch.device(device)
        self.model = model
        self.ddp_model = self._wrap(model, find_unused_parameters)
        self.losses = list(losses)
        self.optimizer, self.scheduler = optimizer, scheduler
        self.loader_factory = loader_factory
        self.max_iters, self.work_dir = max_iters, Path(work_dir)
        self.amp, self.accumulation_steps, self.grad_clip = amp, accumulation_steps, grad_clip
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        self.memory_bank = memory_bank
        self.evaluate_fn, self.eval_interval, self.best_metric = (
            evaluate_fn,
            eval_interval,
            best_metric,
        )
        self.log_interval, self.checkpoint_interval = log_interval, checkpoint_interval
        self.keep_iter_checkpoints = keep_iter_checkpoints
        self.config = config
        self.tensorboard, self.progress = tensorboard, progress
        self.seed = seed
        self.iteration = 0
        self.best: dict[str, Any] | None = None
        self.last_checkpoint: Path | None = None

    def _wrap(self, model: nn.Module, find_unused: bool) -> nn.Module:
        if not dist.is_distributed():
            return model
        ids = [self.device.index or 0] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=find_unused
        )

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint dict of the current state (see :mod:`aucseg.engine.checkpoint`)."""
        bank = self.memory_bank.state_dict() if self.memory_bank is not None else None
        return make_checkpoint(
            self.model.state_dict(),
            self.iteration,
            optimizer_state=self.optimizer.state_dict(),
            scheduler_state=self.scheduler.state_dict(),
            scaler_state=self.scaler.state_dict(),
            memory_bank_state=bank,
            best_metric=self.best,
            config=self.config,
            meta={"world_size": dist.get_world_size(), "amp": self.amp},
        )

    def load_state_dict(self, state: dict[str, Any], restore_rng: bool = True) -> None:
        """Restore a checkpoint dict written by :meth:`state_dict`.

        On rank 0 the RNG states are restored exactly; other ranks cannot (only rank 0's
        states are saved) and reseed from ``(seed, iteration, rank)`` instead.
        """
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.memory_bank is not None and state.get("memory_bank") is not None:
            self.memory_bank.load_state_dict(state["memory_bank"])
        self.iteration = int(state["iteration"])
        self.best = state.get("best_metric")
        if restore_rng and state.get("rng") is not None:
            if dist.get_rank() == 0:
                set_rng_state(state["rng"])
            else:
                rank_seed = sample_seed(self.seed, self.iteration, stream=3 + dist.get_rank())
                dist.seed_everything(rank_seed, rank_offset=False)

    def resume(self, path: str | Path) -> int:
        """Load ``path`` (via ``torch.load(weights_only=True)``) and return its iteration."""
        self.load_state_dict(load_checkpoint_file(path, map_location="cpu"))
        self.last_checkpoint = Path(path)
        return self.iteration

    def save(self, *names: str) -> Path | None:
        """Write ``checkpoints/<name>`` for each name atomically on rank 0.

        Returns:
            The first path written (None on other ranks).
        """
        if not dist.is_main_process():
            return None
        state = self.state_dict()
        paths = [save_atomic(state, checkpoint_dir(self.work_dir) / n) for n in names]
        return paths[0]

    # ------------------------------------------------------------------ steps

    def _autocast(self):
        dtype = AMP_DTYPES[self.amp]
        if dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def _check_finite(self, terms: dict[str, torch.Tensor], iteration: int) -> None:
        values = torch.stack([t.detach().float() for t in terms.values()])
        bad = dist.all_reduce_sum((~torch.isfinite(values)).float())
        if bool(bad.any()):
            idx = int(torch.nonzero(bad)[0])
            name = list(terms)[idx]
            raise NonFiniteLossError(name, iteration, float(values[idx]), self.last_checkpoint)

    def train_step(self, data_iter: Iterator[dict[str, Any]], iteration: int) -> dict[str, float]:
        """One optimisation step over ``accumulation_steps`` micro-batches.

        Returns:
            Each loss term (averaged over micro-batches), their sum ``loss`` and
            ``num_images``.

        Raises:
            NonFiniteLossError: a loss term is NaN/Inf on any rank (before the update).
        """
        self.scheduler.step_to(iteration)
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}
        num_images = 0
        for micro in range(self.accumulation_steps):
            batch = next(data_iter)
            images = batch["image"].to(self.device, non_blocking=True)  # (B,3,H,W)
            labels = batch["label"].to(self.device, non_blocking=True)  # (B,H,W)
            if self.memory_bank is not None:
                images, labels = self.memory_bank(images, labels)
            num_images += images.shape[0]
            last = micro == self.accumulation_steps - 1
            no_sync = getattr(self.ddp_model, "no_sync", None)
            with nullcontext() if last or no_sync is None else no_sync():
                with self._autocast():
                    logits = self.ddp_model(images)  # (B,C,H,W)
                logits = logits.float()  # losses always run in float32
                terms = {loss.loss_name: loss(logits, labels) for loss in self.losses}
                self._check_finite(terms, iteration)
                total = sum(terms.values()) / self.accumulation_steps
                self.scaler.scale(total).backward()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value.detach() / self.accumulation_steps
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        out = {name: float(v) for name, v in sums.items()}
        out["loss"] = sum(out.values())
        out["num_images"] = num_images
        return out

    def evaluate(self) -> dict[str, Any]:
        """Run ``evaluate_fn`` in eval mode; update ``best.pth`` when the best metric improves."""
        assert self.evaluate_fn is not None
        self.model.eval()
        try:
            results = self.evaluate_fn(self.model)
        finally:
            self.model.train()
        if self.best_metric not in results:
            raise ValueError(
                f"evaluation.best_metric {self.best_metric!r} is not among the evaluation "
                f"results {sorted(k for k in results if k != 'per_class')}"
            )
        if results[self.best_metric] is None:
            raise ValueError(
                f"evaluation.best_metric {self.best_metric!r} is null in the evaluation results "
                f"(no class groups?); set data.class_groups or use best_metric mIoU"
            )
        value = float(results[self.best_metric])
        if math.isfinite(value) and (self.best is None or value > self.best["value"]):
            self.best = {"name": self.best_metric, "value": value, "iteration": self.iteration}
            self.save("best.pth")
        return results

    # ------------------------------------------------------------------ loop

    def train(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train from ``self.iteration`` to ``max_iters`` (or ``stop_at``, for tests).

        Returns:
            ``{"iteration", "best_metric", "last_checkpoint", "last_log"}``.

        Raises:
            NonFiniteLossError: see :meth:`train_step`; nothing is written for that iteration.
        """
        end = self.max_iters if stop_at is None else min(stop_at, self.max_iters)
        logger = TrainLogger(
            self.work_dir,
            self.max_iters,
            self.iteration,
            enabled=dist.is_main_process(),
            tensorboard=self.tensorboard,
            progress=self.progress,
        )
        consumed = self.iteration * self.accumulation_steps
        data_iter = iter(self.loader_factory(consumed))
        self.model.train()
        window: dict[str, float] = {}
        count, images, tic = 0, 0, time.perf_counter()
        last_log: dict[str, Any] = {}
        try:
            while self.iteration < end:
                out = self.train_step(data_iter, self.iteration)
                self.iteration += 1
                images += out.pop("num_images")
                count += 1
                for k, v in out.items():
                    window[k] = window.get(k, 0.0) + v
                logger.advance(self.iteration)
                if self.iteration % self.log_interval == 0 or self.iteration == end:
                    elapsed = time.perf_counter() - tic
                    last_log = self._log_scalars(window, count, images, elapsed)
                    logger.log(self.iteration, last_log)
                    window, count, images, tic = {}, 0, 0, time.perf_counter()
                self._maybe_evaluate_and_save(logger)
        finally:
            logger.close()
        return {
            "iteration": self.iteration,
            "best_metric": self.best,
            "last_checkpoint": self.last_checkpoint,
            "last_log": last_log,
        }

    def _log_scalars(
        self, window: dict[str, float], count: int, images: int, elapsed: float
    ) -> dict[str, Any]:
        scalars: dict[str, Any] = {k: v / max(count, 1) for k, v in window.items()}
        for i, group in enumerate(self.optimizer.param_groups):
            scalars["lr" if i == 0 else f"lr_group{i}"] = group["lr"]
        scalars["images_per_s"] = images * dist.get_world_size() / max(elapsed, 1e-9)
        scalars["memory_mb"] = memory_mb(self.device)
        if self.amp == "fp16":
            scalars["loss_scale"] = float(self.scaler.get_scale())
        if self.memory_bank is not None and hasattr(self.memory_bank, "stats"):
            for k, v in self.memory_bank.stats().items():
                if isinstance(v, (int, float)):
                    scalars[f"bank/{k}"] = v
            self.memory_bank.reset_stats()
        return scalars

    def _maybe_evaluate_and_save(self, logger: TrainLogger) -> None:
        it, final = self.iteration, self.iteration == self.max_iters
        evaluating = self.evaluate_fn is not None and self.eval_interval > 0
        if evaluating and (it % self.eval_interval == 0 or final):
            results = self.evaluate()
            scalars = {k: v for k, v in results.items() if isinstance(v, (int, float))}
            logger.log(it, scalars, tag="val")
        if it % self.checkpoint_interval == 0 or final:
            names = ["last.pth"] + ([f"iter_{it:07d}.pth"] if self.keep_iter_checkpoints else [])
            path = self.save(*names)
            if path is not None:
                self.last_checkpoint = path
            dist.barrier()
