"""Turn accumulated counts into a JSON-safe report; tables for the console and comparisons.

A *results* dict (what :func:`summarize` returns, ``aucseg test`` writes and ``aucseg compare``
reads) holds percentages with NaN replaced by ``None``::

    {"aAcc", "mIoU", "mAcc", "mIoU_head", "mIoU_middle", "mIoU_tail", "AUC",
     "groups": {"head": [ids], ...} | None,
     "per_class": [{"name", "iou", "acc", "group"}, ...]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from aucseg.metrics.confusion import ConfusionMatrix, _nanmean

GROUP_NAMES: tuple[str, ...] = ("head", "middle", "tail")
SUMMARY_KEYS: tuple[str, ...] = (
    "aAcc",
    "mIoU",
    "mAcc",
    "mIoU_head",
    "mIoU_middle",
    "mIoU_tail",
    "AUC",
)
REQUIRED_KEYS: tuple[str, ...] = ("aAcc", "mIoU", "mAcc", "per_class")


def _percent(value: float | None) -> float | None:
    """``value * 100`` as a Python float, ``None`` for None/NaN."""
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value) * 100.0


def _check_groups(groups: Mapping[str, Sequence[int]], num_classes: int) -> dict[str, list[int]]:
    if not isinstance(groups, Mapping):
        raise TypeError(
            f"groups must be a dict like {{'head': [ids], 'middle': [...], 'tail': [...]}}, "
            f"got {type(groups).__name__}"
        )
    checked: dict[str, list[int]] = {}
    for name, ids in groups.items():
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < num_classes]
        if bad:
            raise ValueError(
                f"group {name!r} has class ids {bad} outside [0, {num_classes}); "
                "the groups must come from the same dataset as the model"
            )
        checked[str(name)] = ids
    return checked


def summarize(
    confusion: ConfusionMatrix,
    class_names: Sequence[str],
    groups: Mapping[str, Sequence[int]] | None = None,
    auc: float | None = None,
) -> dict:
    """Percent metrics from a confusion matrix, with per-class rows and group means.

    Args:
        confusion: accumulated (and, when distributed, all-reduced) confusion matrix.
        class_names: one name per class, in class-id order.
        groups: class ids per group, keys among ``head``/``middle``/``tail`` (others are
            reported as ``mIoU_<key>`` too); ``None`` reports the group means as ``None``.
        auc: one-vs-one AUC as a fraction (``PairwiseAUC.compute()``), or ``None``.

    Returns:
        The results dict described in the module docstring, percent values, NaN -> ``None``.
        ``mIoU_<group>`` is the nanmean of the group's per-class IoU.

    Raises:
        ValueError: wrong number of class names or group ids out of range.
        TypeError: ``groups`` not a mapping.
    """
    c = confusion.num_classes
    names = [str(n) for n in class_names]
    if len(names) != c:
        raise ValueError(
            f"got {len(names)} class names for {c} classes; pass one name per class id"
        )
    metrics = confusion.compute()
    iou, acc = metrics["iou"], metrics["acc"]
    checked = _check_groups(groups, c) if groups is not None else None
    group_of: dict[int, str] = {}
    for gname, ids in (checked or {}).items():
        for i in ids:
            group_of.setdefault(i, gname)
    results: dict = {
        "aAcc": _percent(metrics["aAcc"]),
        "mIoU": _percent(metrics["mIoU"]),
        "mAcc": _percent(metrics["mAcc"]),
    }
    for gname in dict.fromkeys((*GROUP_NAMES, *(checked or {}))):
        ids = (checked or {}).get(gname)
        results[f"mIoU_{gname}"] = _percent(_nanmean(iou[ids])) if ids else None
    results["AUC"] = _percent(auc)
    results["groups"] = checked
    results["per_class"] = [
        {
            "name": names[i],
            "iou": _percent(iou[i]),
            "acc": _percent(acc[i]),
            "group": group_of.get(i),
        }
        for i in range(c)
    ]
    return results


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

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_json_safe(results), indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def load_metrics_json(path: str | Path) -> dict:
    """Read a metrics file written by :func:`write_metrics_json` (e.g. by ``aucseg test``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not JSON, or a required key (aAcc, mIoU, mAcc, per_class) is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"metrics file {str(path)!r} not found; write one with 'aucseg test ... --out FILE'"
        )
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON ({err})") from err
    if not isinstance(results, dict):
        raise ValueError(f"{str(path)!r} holds a {type(results).__name__}, expected an object")
    missing = [k for k in REQUIRED_KEYS if k not in results]
    if missing:
        raise ValueError(
            f"{str(path)!r} lacks the keys {missing}; expected a file written by 'aucseg test'"
        )
    return results


def _fmt(value: float | None, width: int = 7) -> str:
    return f"{value:{width}.2f}" if value is not None else f"{'-':>{width}}"


def _summary_rows(results: Mapping) -> list[tuple[str, float | None]]:
    keys = [k for k in SUMMARY_KEYS if k in results]
    keys += [k for k in results if k.startswith("mIoU_") and k not in keys]
    return [(k, results.get(k)) for k in keys]


def format_table(results: Mapping) -> str:
    """Console table: the summary metrics, then IoU / Acc per class (``-`` = not present).

    Returns:
        Multi-line string (no trailing newline).
    """
    lines = ["  ".join(f"{k}={_fmt(v, 0).strip()}" for k, v in _summary_rows(results))]
    if results.get("mIoU_head") is None and not results.get("groups"):
        lines.append("(no class groups given: head/middle/tail mIoU not reported)")
    per_class = results.get("per_class", [])
    width = max([len("class"), *(len(str(r["name"])) for r in per_class)])
    lines.append(f"{'class':<{width}}  {'group':<6}  {'IoU':>7}  {'Acc':>7}")
    lines.append("-" * (width + 26))
    for row in per_class:
        group = row.get("group") or "-"
        lines.append(f"{row['name']:<{width}}  {group:<6}  {_fmt(row['iou'])}  {_fmt(row['acc'])}")
    return "\n".join(lines)


def _delta(a: float | None, b: float | None) -> str:
    return f"{b - a:+7.2f}" if a is not None and b is not None else f"{'-':>7}"


def compare_results(a: Mapping, b: Mapping, labels: tuple[str, str] = ("A", "B")) -> str:
    """Side-by-side table of two results dicts: summary metrics, then per-class IoU.

    Args:
        a, b: results dicts (see :func:`summarize` / :func:`load_metrics_json`).
        labels: column titles.

    Returns:
        Multi-line string; the per-class part is omitted when the class lists differ.
    """
    la, lb = (str(x)[:9] for x in labels)
    keys = list(dict.fromkeys([k for k, _ in _summary_rows(a)] + [k for k, _ in _summary_rows(b)]))
    lines = [f"{'metric':<12}  {la:>9}  {lb:>9}  {'delta':>7}", "-" * 43]
    for k in keys:
        va, vb = a.get(k), b.get(k)
        lines.append(f"{k:<12}  {_fmt(va, 9)}  {_fmt(vb, 9)}  {_delta(va, vb)}")
    rows_a, rows_b = a.get("per_class", []), b.get("per_class", [])
    if [r["name"] for r in rows_a] != [r["name"] for r in rows_b]:
        lines.append("(per-class rows not compared: the two files have different class lists)")
        return "\n".join(lines)
    width = max([len("class"), *(len(str(r["name"])) for r in rows_a)])
    lines += ["", f"{'class':<{width}}  {'group':<6}  {la:>9}  {lb:>9}  {'delta':>7}"]
    lines.append("-" * (width + 39))
    for ra, rb in zip(rows_a, rows_b, strict=True):
        group = ra.get("group") or rb.get("group") or "-"
        lines.append(
            f"{ra['name']:<{width}}  {group:<6}  {_fmt(ra['iou'], 9)}  {_fmt(rb['iou'], 9)}  "
            f"{_delta(ra['iou'], rb['iou'])}"
        )
    return "\n".join(lines)
