"""Results files: write them JSON-safe, read them back with a lenient structure check.

A results file is what :func:`aucseg.metrics.summarize` returns, written by ``aucseg test
--out``. It may also carry a ``provenance`` object saying where the numbers come from::

    {"checkpoint": str, "iteration": int, "config": str | object, "split": str,
     "mode": "whole" | "slide", "tta": bool, "aucseg_version": str,
     "class_ids": [int, ...], "seed": int, "label": str}

Every provenance key is optional and ``null`` is accepted for each; unknown keys are kept.
Files without ``provenance`` (written by older versions) load unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from aucseg.errors import InputError
from aucseg.fileio import write_text_atomic

REQUIRED_KEYS: tuple[str, ...] = ("aAcc", "mIoU", "mAcc", "per_class")
SUMMARY_KEYS: tuple[str, ...] = (
    "aAcc",
    "mIoU",
    "mAcc",
    "mIoU_head",
    "mIoU_middle",
    "mIoU_tail",
    "AUC",
)
PROVENANCE_TYPES: dict[str, tuple[type, ...]] = {
    "checkpoint": (str,),
    "iteration": (int,),
    "config": (str, dict),
    "split": (str,),
    "mode": (str,),
    "tta": (bool,),
    "aucseg_version": (str,),
    "class_ids": (list,),
    "seed": (int,),
    "label": (str,),
}
_FIX = "expected a file written by 'aucseg test --out FILE'"


def _json_safe(value: object) -> object:
    """Recursively convert numpy/torch scalars and arrays to JSON types, NaN/inf to ``None``."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to a metrics JSON file")


def write_metrics_json(path: str | Path, results: Mapping) -> Path:
    """Write ``results`` as indented JSON (NaN -> null), creating parent folders.

    Args:
        path: output file.
        results: a results dict (or any mapping of JSON-able values, numpy/torch scalars).

    Returns:
        The path written.

    Raises:
        TypeError: a value that cannot be written as JSON.
    """
    text = json.dumps(_json_safe(results), indent=2, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_json(path: Path) -> object:
    """Parse ``path`` as JSON; every failure is an :class:`InputError` naming the file."""
    if not path.is_file():
        raise InputError(
            f"metrics file '{path}' not found; write one with 'aucseg test ... --out FILE'"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"metrics file '{path}' cannot be read ({err}); {_FIX}") from err
    except json.JSONDecodeError as err:
        raise InputError(f"metrics file '{path}' is not valid JSON ({err}); {_FIX}") from err


def _check_summary(results: dict, where: str) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in results]
    if missing:
        raise InputError(f"{where} lacks the keys {missing}; {_FIX}")
    keys = [k for k in results if k in SUMMARY_KEYS or k.startswith("mIoU_")]
    for key in keys:
        value = results[key]
        if value is not None and not _is_number(value):
            raise InputError(f"{where}: {key!r} is {value!r}, expected a number or null; {_FIX}")


def _check_per_class(rows: object, where: str) -> None:
    if not isinstance(rows, list) or not rows:
        raise InputError(f"{where}: 'per_class' must be a non-empty list of class rows; {_FIX}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            raise InputError(
                f"{where}: per_class row {i} is {row!r}, expected an object with a string "
                f"'name'; {_FIX}"
            )
        for key in ("iou", "acc"):
            value = row.get(key)
            if value is not None and not _is_number(value):
                raise InputError(
                    f"{where}: per_class row {i} ({row['name']!r}) has {key}={value!r}, "
                    f"expected a number or null; {_FIX}"
                )


def _check_provenance(provenance: object, num_classes: int, where: str) -> None:
    if not isinstance(provenance, dict):
        raise InputError(f"{where}: 'provenance' is {provenance!r}, expected an object; {_FIX}")
    for key, types in PROVENANCE_TYPES.items():
        value = provenance.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            allowed = " or ".join(t.__name__ for t in types)
            raise InputError(
                f"{where}: provenance {key!r} is {value!r}, expected {allowed} or null; {_FIX}"
            )
    ids = provenance.get("class_ids")
    if ids is not None and (len(ids) != num_classes or not all(_is_int(i) for i in ids)):
        raise InputError(
            f"{where}: provenance 'class_ids' is {ids!r}, expected {num_classes} integer ids "
            f"(one per per_class row); {_FIX}"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_metrics_json(path: str | Path) -> dict:
    """Read a results file written by :func:`write_metrics_json` (e.g. by ``aucseg test``).

    The check is lenient: the summary keys (aAcc, mIoU, mAcc) and ``per_class`` rows with a
    string ``name`` are required, values must be numbers or null, an optional ``provenance``
    object must have the types in :data:`PROVENANCE_TYPES`; anything else is kept as is.

    Args:
        path: the JSON file.

    Returns:
        The results dict, ``provenance`` included when the file has one.

    Raises:
        InputError: the file is missing, unreadable, not JSON or not a results object; the
            one-line message names the file.
    """
    path = Path(path)
    results = _read_json(path)
    where = f"metrics file '{path}'"
    if not isinstance(results, dict):
        raise InputError(f"{where} holds a {type(results).__name__}, expected an object; {_FIX}")
    _check_summary(results, where)
    _check_per_class(results["per_class"], where)
    if "provenance" in results and results["provenance"] is not None:
        _check_provenance(results["provenance"], len(results["per_class"]), where)
    return results
