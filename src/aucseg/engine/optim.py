"""AdamW with the official SegNeXt/AUCSeg parameter groups.

mmcv's ``DefaultOptimizerConstructor`` with ``custom_keys`` applies, per parameter, the first
key (keys sorted alphabetically, then by length, longest first) that occurs as a substring of
the parameter's full name. The official keys are ``pos_block`` (decay x0), ``head`` (lr x10)
and ``norm`` (decay x0), giving the order ``pos_block``, ``head``, ``norm``: every
``decode_head.*`` parameter gets lr x10 with full decay (its GroupNorm included), backbone
parameters whose name contains ``norm`` get no decay, everything else (stem BatchNorm
``patch_embed1.proj.1``, ``layer_scale_*``, biases) keeps the base decay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn


def official_custom_keys(
    head_lr_mult: float = 10.0, norm_decay_mult: float = 0.0
) -> dict[str, tuple[float, float]]:
    """The official ``paramwise_cfg.custom_keys`` as ``{key: (lr_mult, decay_mult)}``."""
    return {
        "pos_block": (1.0, 0.0),
        "norm": (1.0, norm_decay_mult),
        "head": (head_lr_mult, 1.0),
    }


def _key_order(custom_keys: Mapping[str, tuple[float, float]]) -> list[str]:
    # mmcv: sorted(keys) then sorted(key=len, reverse=True) (stable, so ties stay alphabetical)
    return sorted(sorted(custom_keys), key=len, reverse=True)


def param_multipliers(
    name: str, custom_keys: Mapping[str, tuple[float, float]]
) -> tuple[float, float]:
    """``(lr_mult, decay_mult)`` of parameter ``name``: the first matching key, else (1, 1)."""
    for key in _key_order(custom_keys):
        if key in name:
            return custom_keys[key]
    return 1.0, 1.0


def group_name(lr_mult: float, decay_mult: float) -> str:
    """A readable name of a parameter group: ``backbone``/``head`` plus ``_no_decay``."""
    name = "backbone" if lr_mult == 1.0 else ("head" if lr_mult > 1.0 else f"lr_x{lr_mult:g}")
    if decay_mult != 1.0:
        name += "_no_decay" if decay_mult == 0.0 else f"_decay_x{decay_mult:g}"
    return name


def build_param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    custom_keys: Mapping[str, tuple[float, float]] | None = None,
) -> list[dict]:
    """Group trainable parameters by their (lr, weight decay) under mmcv's matching rule.

    Args:
        model: the unwrapped model (parameter names such as ``backbone.block1.0.norm1.weight``).
        lr: base learning rate.
        weight_decay: base weight decay.
        custom_keys: ``{substring: (lr_mult, decay_mult)}``; default :func:`official_custom_keys`.

    Returns:
        Optimizer parameter groups, each with ``params``, ``lr``, ``weight_decay``,
        ``lr_mult``, ``decay_mult`` and ``names`` (for inspection; ignored by the optimizer).
    """
    keys = official_custom_keys() if custom_keys is None else dict(custom_keys)
    groups: dict[tuple[float, float], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr_mult, decay_mult = param_multipliers(name, keys)
        group = groups.setdefault(
            (lr_mult, decay_mult),
            {
                "params": [],
                "names": [],
                "lr": lr * lr_mult,
                "weight_decay": weight_decay * decay_mult,
                "lr_mult": lr_mult,
                "decay_mult": decay_mult,
                "group": group_name(lr_mult, decay_mult),
            },
        )
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def fused_supported(device: torch.device) -> bool:
    """Whether this torch has a fused AdamW kernel for ``device``."""
    if device.type == "cuda":
        return True
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    return device.type == "cpu" and (major, minor) >= (2, 4)


def build_adamw(
    model: nn.Module,
    lr: float = 6e-5,
    weight_decay: float = 0.01,
    betas: Sequence[float] = (0.9, 0.999),
    eps: float = 1e-8,
    head_lr_mult: float = 10.0,
    norm_decay_mult: float = 0.0,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW over :func:`build_param_groups` with the official custom keys.

    ``fused=True`` (one kernel for all parameters) also lets the trainer skip a step with a
    non-finite loss or gradient on the device, without a host sync; ``None`` picks it where
    torch supports it for the parameters' device (CUDA; CPU from torch 2.4).

    Raises:
        ValueError: non-positive ``lr`` or a model without trainable parameters.
    """
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a finite number > 0, got {lr}")
    groups = build_param_groups(
        model, lr, weight_decay, official_custom_keys(head_lr_mult, norm_decay_mult)
    )
    if not groups:
        raise ValueError("the model has no trainable parameters (all requires_grad=False)")
    if fused is None:
        fused = fused_supported(groups[0]["params"][0].device)
    return torch.optim.AdamW(
        groups, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, fused=fused
    )
