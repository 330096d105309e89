"""The training loop: one optimisation step, repeated, with periodic work done by hooks.

:class:`Trainer` owns the model, the losses, the optimizer, the data stream and the step;
everything periodic (learning rate, logging, checkpoints, evaluation, interrupts) is a hook
from :mod:`aucseg.engine.hooks` called ``before_train / before_step / after_step /
after_train`` (the shape of detectron2's ``TrainerBase``).

A step never waits for the device: loss values stay on the device until a hook reads them at
log time, and the NaN/Inf guard is a device-side flag. A step whose loss terms or gradient
are not finite makes no update (the fused AdamW kernel skips it on the device); the host reads
the flag at log time, before every checkpoint and at the end, and then stops the run (or,
with ``nonfinite="skip"``, counts the skipped steps). Input checks that need the host (label
range) run at the first step, at log steps, and at every step in debug mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aucseg import dist
from aucseg.data.samplers import sample_seed
from aucseg.engine.checkpoint import make_checkpoint, set_rng_state
from aucseg.errors import InputError, Interrupted, NonFiniteError
from aucseg.losses.validation import input_checks

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class StepOptions:
    """How one optimisation step runs.

    Args:
        device: compute device.
        amp: ``"none"``, ``"bf16"`` (autocast) or ``"fp16"`` (autocast + GradScaler).
        accumulation_steps: micro-batches per optimisation step.
        grad_clip: max gradient L2 norm, or None (off).
        nonfinite: ``"stop"`` the run or ``"skip"`` the step when a term or the gradient is
            NaN/Inf (the update is never applied either way).
        debug: check inputs at every step, not only at the first and at log steps.
        channels_last: feed images in channels-last memory format.
        find_unused_parameters: passed to DDP.
        seed: run seed; ranks > 0 derive their RNG state from it when resuming.
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp: str = "none"
    accumulation_steps: int = 1
    grad_clip: float | None = None
    nonfinite: str = "stop"
    debug: bool = False
    channels_last: bool = False
    find_unused_parameters: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.amp not in AMP_DTYPES:
            raise InputError(f"amp must be one of {list(AMP_DTYPES)}, got {self.amp!r}")
        if self.accumulation_steps < 1:
            raise InputError(f"accumulation_steps must be >= 1, got {self.accumulation_steps}")
        if self.nonfinite not in ("stop", "skip"):
            raise InputError(f"nonfinite must be 'stop' or 'skip', got {self.nonfinite!r}")
        self.device = torch.device(self.device)


def term_names(losses: Sequence[nn.Module]) -> list[str]:
    """Unique log names of the loss terms (``loss_name``, suffixed ``_1``, ... when repeated)."""
    names: list[str] = []
    for i, loss in enumerate(losses):
        name = getattr(loss, "loss_name", f"loss_{i}")
        names.append(name if name not in names else f"{name}_{i}")
    return names


class Trainer:
    """Runs optimisation steps until ``max_iters``; hooks do the periodic work.

    Args:
        model: the unwrapped segmentor ``(B,3,H,W) -> (B,C,H,W)`` logits at input size, on
            ``options.device``; wrapped in DDP when a process group is running.
        losses: modules ``(logits, target) -> weighted scalar`` with a ``loss_name``.
        optimizer: over ``model``'s parameters (fused AdamW skips bad steps without a sync).
        data: ``f(consumed_batches) -> iterable of {"image", "label"}`` batches continuing the
            stream after that many batches of this rank.
        max_iters: total optimisation steps.
        options: :class:`StepOptions`.
        memory_bank: batch-level ``(images, labels) -> (images, labels)`` with
            ``state_dict``/``load_state_dict``, or None.
        hooks: :class:`~aucseg.engine.hooks.HookBase` instances, called in order.
    """

    def __init__(
        self,
        model: nn.Module,
        losses: Sequence[nn.Module],
        optimizer: torch.optim.Optimizer,
        data: Callable[[int], Iterable[dict[str, Any]]],
        max_iters: int,
        options: StepOptions | None = None,
        memory_bank: Any = None,
        hooks: Sequence[Any] = (),
    ) -> None:
        if not losses:
            raise InputError("at least one loss term is required")
        self.options = options or StepOptions()
        self.device = self.options.device
        self.model, self.losses, self.optimizer = model, list(losses), optimizer
        self.names = term_names(self.losses)
        self.data, self.max_iters, self.memory_bank = data, max_iters, memory_bank
        self.ddp_model = self._wrap(model)
        fp16 = self.options.amp == "fp16"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.iteration = 0
        self.start_iter = 0
        self.last_checkpoint: Path | None = None
        self.config: dict | None = None  # resolved config stored in checkpoints
        self.step_terms: dict[str, torch.Tensor] = {}
        self.num_images = 0
        self.skipped_steps = 0  # steps skipped so far (nonfinite="skip"), as read by the host
        self._reset_health()
        self.hooks: list[Any] = []
        self.register_hooks(hooks)

    def register_hooks(self, hooks: Iterable[Any]) -> None:
        """Append ``hooks`` (each gets ``hook.trainer = self``)."""
        for hook in hooks:
            hook.trainer = self
            self.hooks.append(hook)

    def _wrap(self, model: nn.Module) -> nn.Module:
        if not dist.is_distributed():
            return model
        ids = [self.device.index or 0] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=self.options.find_unused_parameters
        )

    def _reset_health(self) -> None:
        # bad[i] for loss term i, bad[-1] for the gradient; the first bad iteration; skip count
        self._bad = torch.zeros(len(self.losses) + 1, dtype=torch.bool, device=self.device)
        self._first_bad = torch.full((), -1, dtype=torch.long, device=self.device)
        self._skipped = torch.zeros((), dtype=torch.long, device=self.device)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint dict of the current state; hooks add their own entries."""
        bank = self.memory_bank.state_dict() if self.memory_bank is not None else None
        state = make_checkpoint(
            self.model.state_dict(),
            self.iteration,
            optimizer_state=self.optimizer.state_dict(),
            scaler_state=self.scaler.state_dict(),
            memory_bank_state=bank,
            config=self.config,
            meta={"world_size": dist.get_world_size(), "amp": self.options.amp},
        )
        for hook in self.hooks:
            key = getattr(hook, "state_key", None)
            if key is not None:
                state[key] = hook.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint dict of :meth:`state_dict` (model, optimizer, hooks, RNG).

        Rank 0 restores the RNG states exactly; other ranks reseed from the iteration.
        """
        self.model.load_state_dict(state["model"])
        # the checkpoint brings the optimizer's moments; its hyperparameters (lr, betas, weight
        # decay, ...) stay those of the current config, so a --set on resume takes effect
        fresh = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, values in zip(self.optimizer.param_groups, fresh, strict=True):
            group.update(values)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.memory_bank is not None and state.get("memory_bank") is not None:
            self.memory_bank.load_state_dict(state["memory_bank"])
        self.iteration = self.start_iter = int(state["iteration"])
        for hook in self.hooks:
            key = getattr(hook, "state_key", None)
            if key is not None and state.get(key) is not None:
                hook.load_state_dict(state[key])
        if state.get("rng") is not None:
            if dist.get_rank() == 0:
                set_rng_state(state["rng"])
            else:
                rank = dist.get_rank()
                seed = sample_seed(self.options.seed, self.iteration, stream=3 + rank)
                dist.seed_everything(seed, rank_offset=False)

    # ------------------------------------------------------------------ step

    def _autocast(self):
        dtype = AMP_DTYPES[self.options.amp]
        return nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)

    def _checking_inputs(self) -> bool:
        """Host-side input checks run at the first step, at log steps and in debug mode."""
        opts = self.options
        return opts.debug or self.iteration == self.start_iter or self._log_step()

    def _log_step(self) -> bool:
        return any(
            getattr(h, "wants_log", lambda it: False)(self.iteration + 1) for h in self.hooks
        )

    def _check_labels(self, labels: torch.Tensor, num_classes: int, ignore: int) -> None:
        bad = (labels != ignore) & ((labels < 0) | (labels >= num_classes))
        if bool(bad.any()):
            values = torch.unique(labels[bad])[:8].tolist()
            raise InputError(
                f"labels hold values {values} outside 0..{num_classes - 1} (ignore {ignore}) at "
                f"iteration {self.iteration}; fix the label maps, set data.reduce_zero_label, or "
                f"set model.num_classes / data.classes to match"
            )

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        batch = next(self._data_iter)
        images = batch["image"].to(self.device, non_blocking=True)  # (B,3,H,W)
        labels = batch["label"].to(self.device, non_blocking=True)  # (B,H,W)
        if self.options.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.memory_bank is not None:
            images, labels = self.memory_bank(images, labels)
        return images, labels

    def _forward_backward(self, last: bool, check: bool) -> list[torch.Tensor]:
        images, labels = self._next_batch()
        self.num_images += images.shape[0]
        no_sync = getattr(self.ddp_model, "no_sync", None)
        with nullcontext() if last or no_sync is None else no_sync():
            with self._autocast():
                logits = self.ddp_model(images)  # (B,C,H,W)
            logits = logits.float()  # the losses run in float32
            if check:
                self._check_labels(labels, logits.shape[1], self._ignore_index())
            with input_checks(False):  # labels are checked above; NaN logits by the guard
                terms = [loss(logits, labels) for loss in self.losses]
            total = torch.stack(terms).sum() / self.options.accumulation_steps
            self.scaler.scale(total).backward()
        return [t.detach() for t in terms]

    def _ignore_index(self) -> int:
        return int(getattr(self.losses[0], "ignore_index", 255))

    def _grad_norm(self) -> torch.Tensor:
        params = [p for p in self.model.parameters() if p.grad is not None]
        if not params:
            return torch.zeros((), device=self.device)
        if self.options.grad_clip is not None:
            return nn.utils.clip_grad_norm_(params, self.options.grad_clip, foreach=True)
        norms = torch._foreach_norm([p.grad for p in params])  # one kernel per dtype/device
        return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))

    def run_step(self) -> None:
        """One optimisation step over ``accumulation_steps`` micro-batches, without host syncs
        (except the input checks of :meth:`_checking_inputs` steps)."""
        opts = self.options
        self.optimizer.zero_grad(set_to_none=True)
        check = self._checking_inputs()
        sums = torch.zeros(len(self.losses), device=self.device)
        for micro in range(opts.accumulation_steps):
            last = micro == opts.accumulation_steps - 1
            terms = self._forward_backward(last, check and micro == 0)
            sums += torch.stack(terms) / opts.accumulation_steps
        self.scaler.unscale_(self.optimizer)
        norm = self._grad_norm()
        bad = torch.cat([~torch.isfinite(sums), (~torch.isfinite(norm)).reshape(1)])
        if opts.amp == "fp16":
            bad[-1] = False  # an overflowing fp16 gradient is the scaler's business (it skips)
        bad = dist.all_reduce_sum(bad.to(torch.int32)) > 0
        self._record_health(bad)
        self._guarded_update(bad.any())
        self.step_terms = dict(zip(self.names, sums, strict=True))
        self.step_norm = norm

    def _record_health(self, bad: torch.Tensor) -> None:
        any_bad = bad.any()
        self._bad |= bad
        first_unset = (self._first_bad < 0) & any_bad
        self._first_bad = torch.where(first_unset, self.iteration + 1, self._first_bad)
        self._skipped += any_bad.long()

    def _guarded_update(self, any_bad: torch.Tensor) -> None:
        """Apply the update unless ``any_bad`` (a device flag): fused optimizers skip it on the
        device; others need one host read."""
        if self.optimizer.defaults.get("fused") and not self.scaler.is_enabled():
            self.optimizer.found_inf = any_bad.float()  # read by the fused kernel
            self.optimizer.grad_scale = None
            try:
                self.optimizer.step()
            finally:
                del self.optimizer.found_inf, self.optimizer.grad_scale
        elif self.scaler.is_enabled():
            # fp16: the scaler skips steps with non-finite gradients (on the device for fused
            # optimizers); a non-finite term with finite gradients is added to its flag
            self._flag_for_scaler(any_bad)
            self.scaler.step(self.optimizer)
        elif not bool(any_bad):
            self.optimizer.step()
        self.scaler.update()

    def _flag_for_scaler(self, any_bad: torch.Tensor) -> None:
        """Add the guard's flag to the GradScaler's found-inf flags of this step (set by
        ``unscale_``), so that ``scaler.step`` skips the update without a host read."""
        state = self.scaler._per_optimizer_states[id(self.optimizer)]
        for found in state["found_inf_per_device"].values():  # (1,) float 0/1 per device
            # a logical or: the fused kernels skip only for a flag of exactly 1
            torch.maximum(found, any_bad.to(found.device, found.dtype), out=found)

    def check_health(self) -> int:
        """Read the device-side guard (one host sync); stop or report skipped steps.

        Returns:
            The number of steps skipped since the last check (also added to
            :attr:`skipped_steps`, which the logger reports).

        Raises:
            NonFiniteError: a step was bad and ``nonfinite="stop"``.
        """
        bad = self._bad.tolist()
        if not any(bad):
            return 0
        first, skipped = int(self._first_bad), int(self._skipped)
        what = [f"loss term '{n}'" for n, b in zip(self.names, bad, strict=False) if b]
        what += ["the gradient"] if bad[-1] else []
        self._reset_health()
        if self.options.nonfinite == "stop":
            raise NonFiniteError(" and ".join(what), first, self.last_checkpoint)
        self.skipped_steps += skipped
        return skipped

    def parameters_finite(self) -> bool:
        """Whether every parameter is finite (one host sync; checked before each save)."""
        flags = [torch.isfinite(p.detach()).all() for p in self.model.parameters()]
        return bool(torch.stack(flags).all()) if flags else True

    # ------------------------------------------------------------------ loop

    def train(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train from ``self.iteration`` to ``max_iters`` (or ``stop_at``).

        Returns:
            ``{"iteration", "last_checkpoint"}`` plus what hooks add in ``after_train``.

        Raises:
            NonFiniteError: see :meth:`check_health`.
            Interrupted: SIGINT/SIGTERM (see :class:`~aucseg.engine.hooks.InterruptHook`).
        """
        end = self.max_iters if stop_at is None else min(stop_at, self.max_iters)
        self.end = end
        self._data_iter: Iterator[dict[str, Any]] = iter(
            self.data(self.iteration * self.options.accumulation_steps)
        )
        self.model.train()
        summary: dict[str, Any] = {}
        try:
            self._call("before_train")
            while self.iteration < end:
                self._call("before_step")
                self.run_step()
                self.iteration += 1
                self._call("after_step")
            self.check_health()
        finally:
            self._data_iter = iter(())  # release the loader's workers now, not at exit
            for hook in self.hooks:
                summary.update(hook.after_train() or {})
        return {"iteration": self.iteration, "last_checkpoint": self.last_checkpoint, **summary}

    def _call(self, stage: str) -> None:
        for hook in self.hooks:
            getattr(hook, stage)()


__all__ = [
    "AMP_DTYPES",
    "Interrupted",
    "NonFiniteError",
    "StepOptions",
    "Trainer",
    "term_names",
]
