"""Iteration-based poly learning-rate schedule with linear warm-up (mmcv ``PolyLrUpdaterHook``).

For iteration ``t`` (0-based, the iteration about to run) and a group's base lr ``b``::

    poly(t)   = (b - min_lr) * (1 - t / max_iters) ** power + min_lr
    lr(t)     = poly(t) * (1 - (1 - t / warmup_iters) * (1 - warmup_ratio))   if t < warmup_iters
              = poly(t)                                                       otherwise

The lr is a pure function of ``t``, so resuming only needs the iteration.
"""

from __future__ import annotations

import torch


def poly_warmup_lr(
    iteration: int,
    base_lr: float,
    max_iters: int,
    power: float = 1.0,
    min_lr: float = 0.0,
    warmup_iters: int = 0,
    warmup_ratio: float = 1e-6,
) -> float:
    """Learning rate at ``iteration`` (0-based) under the mmcv poly + linear warm-up formula."""
    progress = min(iteration, max_iters) / max_iters
    lr = (base_lr - min_lr) * (1.0 - progress) ** power + min_lr
    if iteration < warmup_iters:
        lr *= 1.0 - (1.0 - iteration / warmup_iters) * (1.0 - warmup_ratio)
    return lr


class PolyWarmupScheduler:
    """Sets every optimizer group's lr from its base lr at a given iteration.

    Args:
        optimizer: its groups' current ``lr`` values are taken as the base lrs.
        max_iters: total iterations (poly reaches ``min_lr`` there).
        power: poly exponent (official 1.0).
        min_lr: floor of the poly curve (official 0).
        warmup_iters: linear warm-up length (official 1500); 0 disables it.
        warmup_ratio: warm-up start factor (official 1e-6).

    Raises:
        ValueError: ``max_iters < 1``, negative ``warmup_iters`` or ``warmup_ratio`` outside (0, 1].
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        max_iters: int,
        power: float = 1.0,
        min_lr: float = 0.0,
        warmup_iters: int = 0,
        warmup_ratio: float = 1e-6,
    ) -> None:
        if max_iters < 1:
            raise ValueError(f"max_iters must be >= 1, got {max_iters}")
        if warmup_iters < 0:
            raise ValueError(f"warmup_iters must be >= 0, got {warmup_iters}")
        if not 0 < warmup_ratio <= 1:
            raise ValueError(f"warmup_ratio must be in (0, 1], got {warmup_ratio}")
        self.optimizer = optimizer
        self.max_iters = max_iters
        self.power = power
        self.min_lr = min_lr
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        self.base_lrs = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        for group, base in zip(optimizer.param_groups, self.base_lrs, strict=True):
            group["initial_lr"] = base
        self.last_iter = -1

    def lr_at(self, iteration: int) -> list[float]:
        """The lr of every group at ``iteration`` (0-based)."""
        return [
            poly_warmup_lr(
                iteration,
                base,
                self.max_iters,
                self.power,
                self.min_lr,
                self.warmup_iters,
                self.warmup_ratio,
            )
            for base in self.base_lrs
        ]

    def step_to(self, iteration: int) -> list[float]:
        """Set the groups' lr for the iteration about to run and return the values."""
        lrs = self.lr_at(iteration)
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self.last_iter = iteration
        return lrs

    def set_base_lrs(self, base_lrs: list[float]) -> None:
        """Use ``base_lrs`` (one per group) from now on, e.g. a new ``optimizer.lr`` on resume."""
        if len(base_lrs) != len(self.base_lrs):
            raise ValueError(f"expected {len(self.base_lrs)} base lrs, got {len(base_lrs)}")
        self.base_lrs = [float(b) for b in base_lrs]
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["initial_lr"] = base
        if self.last_iter >= 0:
            self.step_to(self.last_iter)

    def state_dict(self) -> dict:
        """Plain values: base lrs, schedule constants and the last iteration set."""
        return {
            "base_lrs": list(self.base_lrs),
            "max_iters": self.max_iters,
            "power": self.power,
            "min_lr": self.min_lr,
            "warmup_iters": self.warmup_iters,
            "warmup_ratio": self.warmup_ratio,
            "last_iter": self.last_iter,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output (base lrs and the last iteration)."""
        if len(state["base_lrs"]) != len(self.base_lrs):
            raise ValueError(
                f"scheduler state has {len(state['base_lrs'])} param groups, the optimizer "
                f"has {len(self.base_lrs)}: the checkpoint belongs to a different model/optimizer"
            )
        self.base_lrs = [float(b) for b in state["base_lrs"]]
        self.last_iter = int(state["last_iter"])
        if self.last_iter >= 0:
            self.step_to(self.last_iter)
