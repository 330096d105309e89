"""Turn accumulated counts into a JSON-safe report; tables for the console and comparisons.

A *results* dict (what :func:`summarize` returns, ``aucseg test`` writes and ``aucseg compare``
reads) holds percentages with NaN replaced by ``None``::

    {"aAcc", "mIoU", "mAcc", "mIoU_head", "mIoU_middle", "mIoU_tail", "AUC",
     "groups": {"head": [ids], ...} | None,
     "per_class": [{"name", "iou", "acc", "group"}, ...],
     "provenance": {...}}  # optional, see aucseg.metrics.results_json

Tables and plots take the class names from the ``per_class`` rows, so a custom dataset's own
names appear without further arguments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from aucseg.metrics.confusion import ConfusionMatrix, _nanmean
from aucseg.metrics.results_json import SUMMARY_KEYS

GROUP_NAMES: tuple[str, ...] = ("head", "middle", "tail")


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


def _fmt(value: float | None, width: int = 7) -> str:
    return f"{value:{width}.2f}" if value is not None else f"{'-':>{width}}"


def _summary_rows(results: Mapping) -> list[tuple[str, float | None]]:
    keys = [k for k in SUMMARY_KEYS if k in results]
    keys += [k for k in results if k.startswith("mIoU_") and k not in keys]
    return [(k, results.get(k)) for k in keys]


def _provenance_line(provenance: Mapping) -> str | None:
    """``checkpoint=... iteration=... split=...`` from the provenance keys that are set."""
    keys = ("checkpoint", "iteration", "split", "mode", "tta")
    parts = [f"{k}={provenance[k]}" for k in keys if provenance.get(k) is not None]
    return "  ".join(parts) or None


def format_table(results: Mapping) -> str:
    """Console table: the summary metrics, then IoU / Acc per class (``-`` = not present).

    Args:
        results: results dict; the class column shows the ``name`` of each ``per_class`` row.

    Returns:
        Multi-line string (no trailing newline).
    """
    lines = ["  ".join(f"{k}={_fmt(v, 0).strip()}" for k, v in _summary_rows(results))]
    source = _provenance_line(results.get("provenance") or {})
    if source:
        lines.append(source)
    if results.get("mIoU_head") is None and not results.get("groups"):
        lines.append("(no class groups given: head/middle/tail mIoU not reported)")
    per_class = results.get("per_class", [])
    names = [str(r["name"]) for r in per_class]
    width = max([len("class"), *(len(n) for n in names)])
    lines.append(f"{'class':<{width}}  {'group':<6}  {'IoU':>7}  {'Acc':>7}")
    lines.append("-" * (width + 26))
    for name, row in zip(names, per_class, strict=True):
        group = row.get("group") or "-"
        lines.append(f"{name:<{width}}  {group:<6}  {_fmt(row['iou'])}  {_fmt(row['acc'])}")
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
    names = [str(r["name"]) for r in rows_a]
    if names != [str(r["name"]) for r in rows_b]:
        lines.append("(per-class rows not compared: the two files have different class lists)")
        return "\n".join(lines)
    width = max([len("class"), *(len(n) for n in names)])
    lines += ["", f"{'class':<{width}}  {'group':<6}  {la:>9}  {lb:>9}  {'delta':>7}"]
    lines.append("-" * (width + 39))
    for name, ra, rb in zip(names, rows_a, rows_b, strict=True):
        group = ra.get("group") or rb.get("group") or "-"
        lines.append(
            f"{name:<{width}}  {group:<6}  {_fmt(ra['iou'], 9)}  {_fmt(rb['iou'], 9)}  "
            f"{_delta(ra['iou'], rb['iou'])}"
        )
    return "\n".join(lines)
