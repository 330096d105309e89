"""Option and input checks shared by every loss in :mod:`aucseg.losses`.

Option checks (``check_*``) run once, when a loss is built. :func:`validate_inputs` runs on
every call; its value checks (label range, NaN/Inf logits) read tensor values and so cost a
device-to-host sync per call on accelerators. They can be switched off for steady-state
training steps with :func:`input_checks` / :func:`set_input_checks`; the free checks (types,
shapes, device, channel count) always run.

Example:
    >>> with input_checks(False):  # doctest: +SKIP
    ...     loss = loss_fn(logits, target)  # no host sync from the checks
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Literal

import torch

from aucseg.errors import InputError

__all__ = [
    "HINGE_FORMS",
    "SURROGATES",
    "TRANSFORMS",
    "HingeForm",
    "Surrogate",
    "Transform",
    "check_ignore_index",
    "check_loss_weight",
    "check_num_classes",
    "check_options",
    "check_sync",
    "input_checks",
    "input_checks_enabled",
    "set_input_checks",
    "validate_inputs",
]

Surrogate = Literal["square", "exp", "hinge"]
Transform = Literal["ovo", "ova"]
HingeForm = Literal["pairwise", "official"]

SURROGATES = ("square", "exp", "hinge")
TRANSFORMS = ("ovo", "ova")
HINGE_FORMS = ("pairwise", "official")

_MAX_LISTED = 10

PAIRWISE_SYNC_REASON = (
    "with form='pairwise', max(0, .) over pairs does not reduce to per-class sums that "
    "processes can add; use sync=False (local-batch loss), or form='official', square or exp, "
    "which are exact across processes"
)

# Process-wide switch for the value checks of validate_inputs. A plain module-level flag:
# flipping it is atomic under the GIL, and every thread of a process sees the same setting.
_INPUT_CHECKS = True


# ----------------------------------------------------------------------------- switch


def set_input_checks(enabled: bool) -> bool:
    """Switch the value checks of :func:`validate_inputs` on or off for the whole process.

    Args:
        enabled: True (default state) to check label range and NaN/Inf logits on every call;
            False to run only the checks that need no host sync.

    Returns:
        The previous setting.

    Raises:
        TypeError: ``enabled`` is not a bool.
    """
    global _INPUT_CHECKS
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True or False, got {type(enabled).__name__} {enabled!r}")
    previous, _INPUT_CHECKS = _INPUT_CHECKS, enabled
    return previous


def input_checks_enabled() -> bool:
    """True when :func:`validate_inputs` also runs the value checks (the default)."""
    return _INPUT_CHECKS


@contextmanager
def input_checks(enabled: bool) -> Iterator[None]:
    """Context manager: value checks on/off inside the block, the previous setting restored after.

    Args:
        enabled: See :func:`set_input_checks`.
    """
    previous = set_input_checks(enabled)
    try:
        yield
    finally:
        set_input_checks(previous)


# ----------------------------------------------------------------------------- options


def check_num_classes(num_classes: object, minimum: int, hint: str = "") -> int:
    """Return ``num_classes`` as int.

    Raises:
        TypeError: Not an int (bools rejected).
        InputError: Smaller than ``minimum`` (``hint`` is appended to the message).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(
            f"num_classes must be an int, got {type(num_classes).__name__} {num_classes!r}"
        )
    if num_classes < minimum:
        raise InputError(f"num_classes must be >= {minimum}, got {num_classes}{hint}")
    return num_classes


def check_loss_weight(loss_weight: object) -> float:
    """Return ``loss_weight`` as float.

    Raises:
        TypeError: Not a real number.
        InputError: NaN or infinite.
    """
    if isinstance(loss_weight, bool) or not isinstance(loss_weight, (int, float)):
        raise TypeError(
            f"loss_weight must be a real number, got {type(loss_weight).__name__} {loss_weight!r}"
        )
    if not math.isfinite(loss_weight):
        raise InputError(f"loss_weight must be finite, got {loss_weight}; e.g. loss_weight=1.0")
    return float(loss_weight)


def check_ignore_index(ignore_index: object) -> int:
    """Return ``ignore_index``; TypeError unless it is an int (bools rejected)."""
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(
            f"ignore_index must be an int, got {type(ignore_index).__name__} {ignore_index!r}"
        )
    return ignore_index


def check_sync(
    sync: object,
    supported: bool,
    owner: str,
    reason: str = "it has no exact distributed mode; use sync=False",
) -> bool:
    """Return ``sync`` after checking that ``owner`` can compute a global-batch loss.

    Args:
        sync: The requested value.
        supported: Whether ``owner`` has an exact distributed mode.
        owner: Name of the loss for the message, e.g. ``"HingeAUCLoss(form='pairwise')"``.
        reason: Why it is unsupported and what to use instead (for the message).

    Returns:
        ``sync``.

    Raises:
        TypeError: ``sync`` is not a bool.
        InputError: ``sync`` is True and ``supported`` is False.
    """
    if not isinstance(sync, bool):
        raise TypeError(f"sync must be True or False, got {type(sync).__name__} {sync!r}")
    if sync and not supported:
        raise InputError(f"sync=True is not supported by {owner}: {reason}")
    return sync


def check_options(
    surrogate: str, transform: str, gamma: float, form: str = "pairwise", sync: bool = False
) -> None:
    """Validate the options of an AUC loss.

    Raises:
        InputError: Unknown surrogate/transform/form, gamma not finite and > 0, or
            ``sync=True`` with the pairwise hinge (no exact per-class statistics).
        TypeError: ``gamma`` not a real number or ``sync`` not a bool.
    """
    if surrogate not in SURROGATES:
        raise InputError(f"surrogate must be one of {SURROGATES}, got {surrogate!r}")
    if transform not in TRANSFORMS:
        raise InputError(
            f"transform must be 'ovo' (one-vs-one) or 'ova' (one-vs-all), got {transform!r}"
        )
    if form not in HINGE_FORMS:
        raise InputError(f"form must be one of {HINGE_FORMS}, got {form!r}")
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)):
        raise TypeError(f"gamma must be a real number, got {type(gamma).__name__} {gamma!r}")
    if not (gamma > 0 and gamma < float("inf")):
        raise InputError(f"gamma (the margin) must be finite and > 0, got {gamma}; default 1.0")
    pairwise = surrogate == "hinge" and form == "pairwise"
    check_sync(sync, not pairwise, "the hinge surrogate", PAIRWISE_SYNC_REASON)


# ----------------------------------------------------------------------------- inputs


def _model_output_hint(logits: object) -> str | None:
    """The fix for a model's output container passed as logits, or None if it is not one."""
    if hasattr(logits, "logits"):  # checked first: HF ModelOutput is also a Mapping
        return (
            f"logits is a {type(logits).__name__} with a .logits attribute; pass outputs.logits "
            "upsampled to the label size (Hugging Face models return logits at 1/4 resolution), "
            "e.g. F.interpolate(outputs.logits, size=target.shape[-2:], mode='bilinear')"
        )
    if isinstance(logits, Mapping):
        keys = sorted(map(str, logits))
        key = "out" if "out" in logits else (keys[0] if len(keys) == 1 else "KEY")
        return (
            f"logits is a dict with keys {keys}; pass logits[{key!r}] "
            "(torchvision segmentation models return a dict)"
        )
    return None


def _check_types(logits: object, target: object) -> None:
    """Raise TypeError unless ``logits`` is a floating tensor and ``target`` an integer one."""
    if not isinstance(logits, torch.Tensor):
        hint = _model_output_hint(logits)
        if hint is not None:
            raise TypeError(hint)
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
    """Raise InputError unless logits is (B, C, *S) and target (B, *S) on the same device."""
    if logits.dim() < 2:
        raise InputError(
            f"logits must have shape (B, C, H, W), got {tuple(logits.shape)}; "
            "add the batch and class dimensions"
        )
    if target.dim() != logits.dim() - 1 or target.shape[0] != logits.shape[0]:
        raise InputError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} do not match: "
            "expected logits (B, C, H, W) and target (B, H, W) with the same B"
        )
    if target.shape[1:] != logits.shape[2:]:
        raise InputError(
            f"spatial size mismatch: logits {tuple(logits.shape[2:])} vs target "
            f"{tuple(target.shape[1:])}; upsample the logits to the label size first, e.g. "
            "F.interpolate(logits, size=target.shape[-2:], mode='bilinear', align_corners=False)"
        )
    if num_classes is not None and logits.shape[1] != num_classes:
        raise InputError(
            f"logits have {logits.shape[1]} channels but the loss was built for num_classes="
            f"{num_classes}; build the loss with num_classes={logits.shape[1]} or fix the head"
        )
    if logits.device != target.device:
        raise InputError(
            f"logits are on {logits.device} but target on {target.device}; "
            "move both to the same device"
        )


def _check_values(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> None:
    """Raise InputError on NaN/Inf logits or labels outside [0, C) other than ``ignore_index``.

    Host syncs: one for the logits, one for the labels (more only when an error is reported).
    """
    num_classes = logits.shape[1]
    if logits.numel() > 0:
        # One fp32 reduction: any NaN or +-Inf makes the sum non-finite. Only then count exactly,
        # so that a (practically impossible) fp32 overflow of finite values is not reported.
        total = logits.detach().sum(dtype=torch.float32)
        if not bool(torch.isfinite(total)):
            n_nan = int(torch.isnan(logits).sum())
            n_inf = int(torch.isinf(logits).sum())
            if n_nan or n_inf:
                raise InputError(
                    f"logits contain {n_nan} NaN and {n_inf} infinite values; only finite "
                    "logits are allowed: check the learning rate, or use a GradScaler with fp16"
                )
    bad = (target != ignore_index) & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        values = torch.unique(target[bad]).tolist()
        shown = ", ".join(str(v) for v in values[:_MAX_LISTED])
        more = f" (and {len(values) - _MAX_LISTED} more)" if len(values) > _MAX_LISTED else ""
        raise InputError(
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

    Types, shapes, device and channel count are always checked (free: no tensor values read).
    Label range and NaN/Inf logits are checked only while :func:`input_checks_enabled` (the
    default); they read tensor values, a host sync on accelerators.

    Args:
        logits: Raw scores, any floating dtype.
        target: Integer class labels; ``ignore_index`` marks pixels to skip.
        num_classes: Expected number of channels of ``logits``; None accepts any.
        ignore_index: Label value that is ignored (may lie outside [0, C)).

    Raises:
        TypeError: Non-tensor inputs (a model's dict / output object is named with the fix),
            non-floating logits or non-integer target.
        InputError: Shape, spatial size, channel count or device mismatch; NaN/Inf logits;
            labels outside [0, C) other than ``ignore_index`` (the bad values are named).

    Shape:
        logits (B, C, H, W) (any number of trailing spatial dims), target (B, H, W).
    """
    _check_types(logits, target)
    _check_shapes(logits, target, num_classes)
    if _INPUT_CHECKS:
        _check_values(logits, target, ignore_index)
