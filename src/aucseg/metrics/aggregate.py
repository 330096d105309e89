"""Mean ± standard deviation of several results dicts per method label (runs over seeds).

An *aggregate* dict (what :func:`aggregate_results` returns and ``aucseg compare --out-json``
writes)::

    {"kind": "aucseg-aggregate",
     "std": "sample standard deviation (ddof=1); null when fewer than 2 runs have a value",
     "metrics": ["mIoU", "mIoU_head", ...], "class_names": [...],
     "methods": [{"label", "runs", "files",
                  "metrics": {key: {"mean", "std", "n"}},
                  "per_class": [{"name", "group", "iou": {"mean", "std", "n"},
                                 "acc": {...}}, ...]}, ...]}

``n`` counts the runs that have a value: a metric that is ``null`` in a run (a class absent from
that evaluation, no class groups) is left out of its mean rather than counted as zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from aucseg.errors import InputError

AGGREGATE_KEYS: tuple[str, ...] = (
    "mIoU",
    "mIoU_head",
    "mIoU_middle",
    "mIoU_tail",
    "mAcc",
    "aAcc",
    "AUC",
)
# Columns of the table even when no run has a value (so a missing group split is visible).
TABLE_KEYS: tuple[str, ...] = AGGREGATE_KEYS[:6]
COLUMN_TITLES: dict[str, str] = {
    "mIoU_head": "head mIoU",
    "mIoU_middle": "middle mIoU",
    "mIoU_tail": "tail mIoU",
}
STD_NOTE = "sample standard deviation (ddof=1); null when fewer than 2 runs have a value"


def mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-wise mean, sample std (ddof=1) and count of the finite entries.

    Args:
        values: ``(R, K)`` float array, NaN where a run has no value.

    Returns:
        ``(mean, std, n)``, each of shape ``(K,)``; mean is NaN where ``n == 0``, std is NaN
        where ``n < 2``.
    """
    present = np.isfinite(values)
    n = present.sum(axis=0)
    filled = np.where(present, values, 0.0)
    mean = np.divide(filled.sum(axis=0), n, out=np.full(n.shape, np.nan), where=n > 0)
    sq = np.where(present, (values - mean) ** 2, 0.0).sum(axis=0)
    std = np.sqrt(np.divide(sq, n - 1, out=np.full(n.shape, np.nan), where=n > 1))
    return mean, std, n


def _stat(mean: float, std: float, n: int) -> dict:
    """One JSON-safe ``{"mean", "std", "n"}`` entry (NaN -> ``None``)."""
    return {
        "mean": float(mean) if np.isfinite(mean) else None,
        "std": float(std) if np.isfinite(std) else None,
        "n": int(n),
    }


def _as_float(value: object) -> float:
    return float("nan") if value is None else float(value)


def _class_key(results: Mapping) -> tuple[list[str], list[int] | None]:
    """Class names of the ``per_class`` rows and the provenance class ids (if any)."""
    names = [str(r["name"]) for r in results["per_class"]]
    ids = (results.get("provenance") or {}).get("class_ids")
    return names, [int(i) for i in ids] if ids is not None else None


def check_same_classes(results: Sequence[Mapping], sources: Sequence[str]) -> list[str]:
    """Check every results dict has the class names (and class ids, when given) of the first.

    Args:
        results: results dicts, at least one.
        sources: one name per results dict (file path), used in the error message.

    Returns:
        The shared class names.

    Raises:
        InputError: the first results dict whose classes differ, named by its source.
    """
    names, ids = _class_key(results[0])
    for res, source in zip(results[1:], sources[1:], strict=True):
        other_names, other_ids = _class_key(res)
        if other_names != names:
            diff = next(
                (i for i, (a, b) in enumerate(zip(names, other_names, strict=False)) if a != b),
                min(len(names), len(other_names)),
            )
            raise InputError(
                f"{source} has {len(other_names)} classes ({_class_at(other_names, diff)} at "
                f"id {diff}) but {sources[0]} has {len(names)} ({_class_at(names, diff)}); "
                "aggregate only results of the same dataset classes"
            )
        if ids is not None and other_ids is not None and ids != other_ids:
            raise InputError(
                f"{source} has provenance class_ids {other_ids} but {sources[0]} has {ids}; "
                "aggregate only results of the same dataset classes"
            )
    return names


def _class_at(names: Sequence[str], index: int) -> str:
    return repr(names[index]) if index < len(names) else "none"


def _metric_keys(results: Sequence[Mapping]) -> list[str]:
    """:data:`AGGREGATE_KEYS`, then extra ``mIoU_<group>`` keys in order of appearance."""
    extra = [k for r in results for k in r if k.startswith("mIoU_") and k not in AGGREGATE_KEYS]
    return [*AGGREGATE_KEYS, *dict.fromkeys(extra)]


def _aggregate_method(
    label: str, runs: Sequence[Mapping], files: Sequence[str], keys: Sequence[str]
) -> dict:
    """The aggregate entry of one label from its runs (same classes, checked before)."""
    summary = np.array([[_as_float(r.get(k)) for k in keys] for r in runs], dtype=np.float64)
    iou = np.array([[_as_float(c.get("iou")) for c in r["per_class"]] for r in runs], np.float64)
    acc = np.array([[_as_float(c.get("acc")) for c in r["per_class"]] for r in runs], np.float64)
    s_mean, s_std, s_n = mean_std(summary)
    i_mean, i_std, i_n = mean_std(iou)
    a_mean, a_std, a_n = mean_std(acc)
    first = runs[0]["per_class"]
    per_class = [
        {
            "name": str(row["name"]),
            "group": row.get("group"),
            "iou": _stat(i_mean[c], i_std[c], i_n[c]),
            "acc": _stat(a_mean[c], a_std[c], a_n[c]),
        }
        for c, row in enumerate(first)
    ]
    return {
        "label": label,
        "runs": len(runs),
        "files": list(files),
        "metrics": {k: _stat(s_mean[j], s_std[j], s_n[j]) for j, k in enumerate(keys)},
        "per_class": per_class,
    }


def aggregate_results(
    results: Sequence[Mapping],
    labels: Sequence[str],
    sources: Sequence[str] | None = None,
) -> dict:
    """Aggregate runs that share a label into mean ± sample std per metric and per class.

    Args:
        results: results dicts (:func:`aucseg.metrics.summarize` /
            :func:`aucseg.metrics.load_metrics_json`), all of the same classes.
        labels: one method label per results dict; equal labels are aggregated together,
            methods keep the order of their first appearance.
        sources: one name per results dict (file paths) for the output and error messages;
            default ``results[i]``.

    Returns:
        The aggregate dict described in the module docstring (JSON-safe).

    Raises:
        InputError: no results, lengths of ``labels``/``sources`` differ from ``results``, or
            the class lists differ (the message names the first mismatching source).
    """
    if not results:
        raise InputError("no results to aggregate; pass at least one results file")
    sources = [f"results[{i}]" for i in range(len(results))] if sources is None else sources
    if len(labels) != len(results) or len(sources) != len(results):
        raise InputError(
            f"got {len(labels)} labels and {len(sources)} sources for {len(results)} results; "
            "pass one label (and one source) per results file"
        )
    class_names = check_same_classes(results, sources)
    keys = _metric_keys(results)
    methods = []
    for label in dict.fromkeys(str(x) for x in labels):
        picked = [i for i, x in enumerate(labels) if str(x) == label]
        runs = [results[i] for i in picked]
        methods.append(_aggregate_method(label, runs, [str(sources[i]) for i in picked], keys))
    return {
        "kind": "aucseg-aggregate",
        "std": STD_NOTE,
        "metrics": keys,
        "class_names": class_names,
        "methods": methods,
    }


def aggregate_means(method: Mapping) -> dict:
    """A results-like dict of one method's means, for :func:`aucseg.metrics.compare_results`.

    Args:
        method: one entry of ``aggregate["methods"]``.

    Returns:
        ``{metric: mean, ..., "per_class": [{"name", "group", "iou", "acc"}]}`` (means).
    """
    means: dict = {k: v["mean"] for k, v in method["metrics"].items()}
    means["per_class"] = [
        {"name": r["name"], "group": r["group"], "iou": r["iou"]["mean"], "acc": r["acc"]["mean"]}
        for r in method["per_class"]
    ]
    return means


def format_stat(stat: Mapping, digits: int = 2) -> str:
    """``mean ± std (n)``; ``mean ± - (1)`` for a single run, ``-`` when no run has a value."""
    if stat["mean"] is None:
        return "-"
    std = f"{stat['std']:.{digits}f}" if stat["std"] is not None else "-"
    return f"{stat['mean']:.{digits}f} ± {std} ({stat['n']})"


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table, first column left-aligned, the others right-aligned."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = "| :-- | " + " | ".join("--:" for _ in header[1:]) + " |"
    return "\n".join([line(header), align, *(line(r) for r in rows)])


def format_aggregate_table(aggregate: Mapping, digits: int = 2) -> str:
    """Markdown table: one row per method, columns ``runs`` then the metrics as mean ± std (n).

    The overall/head/middle/tail mIoU, mAcc and aAcc columns are always shown; AUC and extra
    groups only when some run has them.

    Returns:
        Multi-line string (no trailing newline).
    """
    methods = aggregate["methods"]
    keys = [
        k
        for k in aggregate["metrics"]
        if k in TABLE_KEYS or any(m["metrics"][k]["n"] > 0 for m in methods)
    ]
    header = ["method", "runs", *(COLUMN_TITLES.get(k, k) for k in keys)]
    rows = [
        [m["label"], str(m["runs"]), *(format_stat(m["metrics"][k], digits) for k in keys)]
        for m in methods
    ]
    return _markdown(header, rows)


def format_aggregate_per_class(aggregate: Mapping, field: str = "iou", digits: int = 2) -> str:
    """Markdown table: one row per class (with its group), one column per method.

    Args:
        aggregate: see :func:`aggregate_results`.
        field: ``"iou"`` or ``"acc"``.
        digits: decimals.

    Returns:
        Multi-line string (no trailing newline).

    Raises:
        InputError: ``field`` is not ``iou`` or ``acc``.
    """
    if field not in ("iou", "acc"):
        raise InputError(f"field must be 'iou' or 'acc', got {field!r}")
    methods = aggregate["methods"]
    title = {"iou": "IoU", "acc": "Acc"}[field]
    header = ["class", "group", *(f"{m['label']} {title}" for m in methods)]
    rows = [
        [name, methods[0]["per_class"][c]["group"] or "-"]
        + [format_stat(m["per_class"][c][field], digits) for m in methods]
        for c, name in enumerate(aggregate["class_names"])
    ]
    return _markdown(header, rows)
