"""Validation of a T-Memory Bank state dict before it is loaded.

Every problem raises :class:`aucseg.errors.CheckpointError` (an ``InputError``) naming the key
path (``memory[3][0].patch``), what it holds and what is expected.
"""

from __future__ import annotations

from typing import Any

import torch

from aucseg.augment.bank_ops import STORAGE_DTYPES
from aucseg.errors import CheckpointError

__all__ = ["STATE_VERSION", "check_state"]

STATE_VERSION = 2
_MT_STATE_LEN = 625  # Mersenne Twister: 624 words and the position
# The bank parameters a state must match, and their Python types.
PARAMETERS: dict[str, type | tuple[type, ...]] = {
    "num_classes": int,
    "classes": str,
    "memory_classes": list,
    "memory_size": int,
    "p_resize": (int, float),
    "update": str,
    "storage": str,
}
_ENTRY_INTS = ("top", "left", "crop_h", "crop_w", "pixels")


def _fail(path: str, problem: str) -> CheckpointError:
    return CheckpointError(
        f"memory-bank state {path} {problem}; load a state written by state_dict() of a bank "
        f"with the same parameters (state version {STATE_VERSION})"
    )


def _get(state: dict, key: str, kind: type | tuple[type, ...], path: str = "") -> Any:
    """``state[key]`` checked for presence and Python type."""
    where = f"{path}{key}"
    if key not in state:
        raise _fail(f"key '{where}'", "is missing")
    value = state[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise _fail(f"key '{where}'", f"is a {type(value).__name__}, expected {names}")
    return value


def _tensor(state: dict, key: str, path: str, dtype: torch.dtype, shape: tuple) -> torch.Tensor:
    """``state[key]``: a tensor of ``dtype`` whose shape matches ``shape`` (a str: any size)."""
    value = _get(state, key, torch.Tensor, path)
    ok = value.ndim == len(shape) and all(
        isinstance(s, str) or s == v for s, v in zip(shape, value.shape, strict=True)
    )
    if value.dtype != dtype or not ok:
        want = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
        raise _fail(
            f"key '{path}{key}'",
            f"is a {value.dtype} tensor of shape {tuple(value.shape)}, expected {dtype} {want}",
        )
    return value


def _check_entry(entry: Any, path: str, storage: str) -> None:
    """One stored entry: patch (3, h, w), mask (h, w) bool or None, lo/step for uint8."""
    if not isinstance(entry, dict):
        raise _fail(f"key '{path[:-1]}'", f"is a {type(entry).__name__}, expected dict")
    patch = _tensor(entry, "patch", path, STORAGE_DTYPES[storage], ("c", "h", "w"))
    if "mask" not in entry or entry["mask"] is not None:  # None: the class fills its box
        _tensor(entry, "mask", path, torch.bool, tuple(patch.shape[1:]))
    for key in ("lo", "step"):
        if storage == "uint8":
            _tensor(entry, key, path, torch.float32, (patch.shape[0], 1, 1))
        elif _get(entry, key, object, path) is not None:
            raise _fail(f"key '{path}{key}'", f"is set, but {storage} storage has no {key}")
    for key in _ENTRY_INTS:
        if _get(entry, key, int, path) < 0:
            raise _fail(f"key '{path}{key}'", f"is {entry[key]}, expected an int >= 0")


def _check_memory(state: dict, expected: dict[str, Any]) -> None:
    """``memory`` and ``writes``: one list per memory class, at most memory_size entries."""
    memory = _get(state, "memory", list)
    writes = _get(state, "writes", list)
    count = len(expected["memory_classes"])
    for key, value in (("memory", memory), ("writes", writes)):
        if len(value) != count:
            raise _fail(f"key '{key}'", f"has {len(value)} items, expected {count} (one a class)")
    for i, (slots, written) in enumerate(zip(memory, writes, strict=True)):
        if not isinstance(slots, list) or len(slots) > expected["memory_size"]:
            size = len(slots) if isinstance(slots, list) else type(slots).__name__
            raise _fail(f"key 'memory[{i}]'", f"holds {size}, expected a list of <= memory_size")
        if not isinstance(written, int) or written < len(slots):
            raise _fail(f"key 'writes[{i}]'", f"is {written!r}, expected an int >= {len(slots)}")
        for j, entry in enumerate(slots):
            _check_entry(entry, f"memory[{i}][{j}].", expected["storage"])


def check_state(state: Any, expected: dict[str, Any]) -> None:
    """Raise :class:`CheckpointError` unless ``state`` is a complete, matching bank state.

    Args:
        state: what :meth:`state_dict` returned (after a torch.save/torch.load round trip).
        expected: this bank's values of :data:`PARAMETERS`.
    """
    if not isinstance(state, dict):
        raise _fail("", f"is a {type(state).__name__}, expected the dict of state_dict()")
    version = _get(state, "version", int)
    if version != STATE_VERSION:
        raise _fail("key 'version'", f"is {version}, expected {STATE_VERSION}")
    for key, kind in PARAMETERS.items():
        theirs = _get(state, key, kind)
        if theirs != expected[key]:
            raise CheckpointError(
                f"memory-bank state has {key}={theirs!r} but this bank has {expected[key]!r}; "
                "build the bank with the parameters it was saved with"
            )
    _get(state, "p_sample", (int, float))
    rng = _get(state, "rng", dict)
    _get(rng, "version", int, "rng.")
    _tensor(rng, "state", "rng.", torch.int64, (_MT_STATE_LEN,))
    _get(rng, "gauss", list, "rng.")
    _check_memory(state, expected)
    counts = _get(state, "counts", dict)
    for key in ("samples", "stored", "pastes", "pixels_pasted"):
        _get(counts, key, int, "counts.")
    for i, pair in enumerate(_get(state, "per_class", list)):
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise _fail(f"key 'per_class[{i}]'", f"is {pair!r}, expected [class id, pastes]")
