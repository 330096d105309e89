"""Input checks shared by every loss in :mod:`aucseg.losses`."""

from __future__ import annotations

import torch

__all__ = ["validate_inputs"]

_MAX_LISTED = 10


def _check_types(logits: object, target: object) -> None:
    """Raise TypeError unless ``logits`` is a floating tensor and ``target`` an integer one."""
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(
            f"logits and target must be torch.Tensor, got {type(logits).__name__} and "
            f"{type(target).__name__}; convert with torch.as_tensor(...)"
        )
    if not logits.is_floating_point():
        raise TypeError(
            f"logits must be floating point (float16, bfloat16, float32 or float64), got "
            f"dtype {logits.dtype}; pass raw model outputs or convert with logits.float()"
        )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(
            f"target must hold integer class labels, got dtype {target.dtype}; "
            "convert with target.long()"
        )


def _check_shapes(logits: torch.Tensor, target: torch.Tensor, num_classes: int | None) -> None:
    """Raise ValueError unless logits is (B, C, *S) and target (B, *S) on the same device."""
    if logits.dim() < 2:
        raise ValueError(
            f"logits must have shape (B, C, H, W), got {tuple(logits.shape)}; "
            "add the batch and class dimensions"
        )
    if target.dim() != logits.dim() - 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} do not match: "
            "expected logits (B, C, H, W) and target (B, H, W) with the same B"
        )
    if target.shape[1:] != logits.shape[2:]:
        raise ValueError(
            f"spatial size mismatch: logits {tuple(logits.shape[2:])} vs target "
            f"{tuple(target.shape[1:])}; upsample the logits to the label size first, e.g. "
            "F.interpolate(logits, size=target.shape[-2:], mode='bilinear', align_corners=False)"
        )
    if num_classes is not None and logits.shape[1] != num_classes:
        raise ValueError(
            f"logits have {logits.shape[1]} channels but the loss was built for num_classes="
            f"{num_classes}; build the loss with num_classes={logits.shape[1]} or fix the head"
        )
    if logits.device != target.device:
        raise ValueError(
            f"logits are on {logits.device} but target on {target.device}; "
            "move both to the same device"
        )


def _check_values(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> None:
    """Raise ValueError on NaN/Inf logits or labels outside [0, C) other than ``ignore_index``."""
    num_classes = logits.shape[1]
    if logits.numel() > 0:
        # One fp32 reduction: any NaN or +-Inf makes the sum non-finite. Only then count exactly,
        # so that a (practically impossible) fp32 overflow of finite values is not reported.
        total = logits.detach().sum(dtype=torch.float32)
        if not bool(torch.isfinite(total)):
            n_nan = int(torch.isnan(logits).sum())
            n_inf = int(torch.isinf(logits).sum())
            if n_nan or n_inf:
                raise ValueError(
                    f"logits contain {n_nan} NaN and {n_inf} infinite values; only finite "
                    "logits are allowed: check the learning rate, or use a GradScaler with fp16"
                )
    bad = (target != ignore_index) & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        values = torch.unique(target[bad]).tolist()
        shown = ", ".join(str(v) for v in values[:_MAX_LISTED])
        more = f" (and {len(values) - _MAX_LISTED} more)" if len(values) > _MAX_LISTED else ""
        raise ValueError(
            f"target holds labels [{shown}]{more} outside [0, {num_classes}) that are not "
            f"ignore_index={ignore_index}; map them to ignore_index or fix num_classes"
        )


def validate_inputs(
    logits: torch.Tensor,
    target: torch.Tensor,
    num_classes: int | None = None,
    ignore_index: int = 255,
) -> None:
    """Check a (logits, target) pair before a segmentation loss is computed.

    Args:
        logits: Raw scores, any floating dtype.
        target: Integer class labels; ``ignore_index`` marks pixels to skip.
        num_classes: Expected number of channels of ``logits``; None accepts any.
        ignore_index: Label value that is ignored (may lie outside [0, C)).

    Raises:
        TypeError: Non-tensor inputs, non-floating logits or non-integer target.
        ValueError: Shape, spatial size, channel count or device mismatch; NaN/Inf logits;
            labels outside [0, C) other than ``ignore_index`` (the bad values are named).

    Shape:
        logits (B, C, H, W) (any number of trailing spatial dims), target (B, H, W).
    """
    _check_types(logits, target)
    _check_shapes(logits, target, num_classes)
    _check_values(logits, target, ignore_index)
