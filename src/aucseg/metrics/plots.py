"""PNG plots of results dicts.

Uses ``matplotlib.figure.Figure`` directly (no pyplot, no global backend switch), imported
lazily so that importing :mod:`aucseg.metrics` stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aucseg.fileio import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

GROUP_COLOURS: dict[str | None, str] = {
    "head": "#1f77b4",
    "middle": "#ff7f0e",
    "tail": "#d62728",
    None: "#7f7f7f",
}
# Bar colours of the methods in an aggregate plot (matplotlib's tab10 order).
METHOD_COLOURS: tuple[str, ...] = (
    "#1f77b4",
    "#2ca02c",
    "#ff7f0e",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
# (label, colour, values per group, std per group or None)
_Series = tuple[str, str, Sequence[float | None], Sequence[float | None] | None]
_OVERALL_KEYS: tuple[tuple[str, str], ...] = (
    ("Overall", "mIoU"),
    ("Head", "mIoU_head"),
    ("Middle", "mIoU_middle"),
    ("Tail", "mIoU_tail"),
)


def _check_order(order: Sequence[int], num_classes: int) -> list[int]:
    order = [int(i) for i in order]
    if sorted(order) != sorted(set(order)) or any(not 0 <= i < num_classes for i in order):
        raise ValueError(
            f"order must list distinct class ids in [0, {num_classes}), got {order}; "
            "e.g. the class ids sorted by descending training pixel count"
        )
    return order


def per_class_figure(results: Mapping, order: Sequence[int] | None = None) -> Figure:
    """The figure of :func:`plot_per_class`: tick labels are the ``per_class`` row names.

    Args:
        results: results dict with ``per_class`` rows (see :func:`aucseg.metrics.summarize`).
        order: class ids in plotting order; default id order.

    Returns:
        A ``matplotlib.figure.Figure`` with one axes.

    Raises:
        ValueError: ``order`` has repeated or out-of-range ids.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = list(results["per_class"])
    order = _check_order(order, len(rows)) if order is not None else list(range(len(rows)))
    names = [str(rows[i]["name"]) for i in order]
    values = [rows[i]["iou"] if rows[i]["iou"] is not None else 0.0 for i in order]
    groups = [rows[i].get("group") for i in order]
    colours = [GROUP_COLOURS.get(g, GROUP_COLOURS[None]) for g in groups]
    fig = Figure(figsize=(max(6.0, 0.28 * len(order) + 2.0), 4.5))
    ax = fig.subplots()
    ax.bar(range(len(order)), values, color=colours)
    ax.set_xticks(range(len(order)), names, rotation=90, fontsize=7)
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_ylim(0, 100)
    ax.set_ylabel("IoU (%)")
    if results.get("mIoU") is not None:
        ax.axhline(results["mIoU"], color="k", linestyle="--", linewidth=1)
    present = [g for g in (*GROUP_COLOURS,) if g in groups]
    handles = [Patch(color=GROUP_COLOURS[g], label=g or "no group") for g in present]
    handles.append(Line2D([], [], color="k", linestyle="--", label="mIoU"))
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    ax.set_title("Per-class IoU")
    return fig


def plot_per_class(
    results: Mapping, path_png: str | Path, order: Sequence[int] | None = None
) -> Path:
    """Bar chart of per-class IoU, coloured by group, with the mIoU as a dashed line.

    The class names on the axis are those stored in the results (a custom dataset's own).

    Args:
        results: results dict with ``per_class`` rows (see :func:`aucseg.metrics.summarize`).
        path_png: output file; parent folders are created.
        order: class ids in plotting order (e.g. descending training frequency); default id
            order. Classes absent from the evaluation (IoU ``None``) are drawn as empty slots.

    Returns:
        The path written.

    Raises:
        ValueError: ``order`` has repeated or out-of-range ids.
    """
    return _save(per_class_figure(results, order), path_png)


def _grouped_bars(ax: Any, series: Sequence[_Series]) -> None:
    """Overall/head/middle/tail bars, one bar per series, value labels, optional error bars.

    Missing values are drawn as empty slots labelled ``n/a``; a missing std draws no error bar.
    """
    width = 0.8 / len(series)
    fontsize = 8 if len(series) <= 3 else 6
    for k, (label, colour, values, errors) in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(_OVERALL_KEYS))]
        heights = [v if v is not None else 0.0 for v in values]
        yerr = [e if e is not None else 0.0 for e in errors] if errors is not None else None
        bars = ax.bar(xs, heights, width, yerr=yerr, capsize=3, label=label, color=colour)
        for j, (bar, v) in enumerate(zip(bars, values, strict=True)):
            top = bar.get_height() + (yerr[j] if yerr is not None else 0.0)
            text = f"{v:.1f}" if v is not None else "n/a"
            x = bar.get_x() + bar.get_width() / 2
            ax.annotate(text, (x, top), ha="center", va="bottom", fontsize=fontsize)
    ax.set_xticks(range(len(_OVERALL_KEYS)), [name for name, _ in _OVERALL_KEYS])
    ax.set_ylim(0, 105)
    ax.set_ylabel("mIoU (%)")
    ax.legend(fontsize=8)


def plot_group_comparison(
    results_a: Mapping,
    results_b: Mapping,
    path_png: str | Path,
    labels: tuple[str, str] = ("A", "B"),
) -> Path:
    """Grouped bars of overall / head / middle / tail mIoU for two results dicts.

    Missing values (e.g. no groups given) are drawn as empty slots labelled ``n/a``.

    Returns:
        The path written.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.0))
    series = [
        (str(label), colour, [res.get(key) for _, key in _OVERALL_KEYS], None)
        for res, label, colour in (
            (results_a, labels[0], "#7f7f7f"),
            (results_b, labels[1], "#2ca02c"),
        )
    ]
    ax = fig.subplots()
    _grouped_bars(ax, series)
    ax.set_title("mIoU by class group")
    return _save(fig, path_png)


def aggregate_figure(aggregate: Mapping) -> Figure:
    """The figure of :func:`plot_aggregate`.

    Args:
        aggregate: see :func:`aucseg.metrics.aggregate_results`.

    Returns:
        A ``matplotlib.figure.Figure``: one bar per method in each of the overall / head /
        middle / tail groups, height = mean, error bar = sample std (none for one run).
    """
    from matplotlib.figure import Figure

    methods = aggregate["methods"]
    series = [
        (
            f"{m['label']} (n={m['runs']})",
            METHOD_COLOURS[k % len(METHOD_COLOURS)],
            [m["metrics"].get(key, {}).get("mean") for _, key in _OVERALL_KEYS],
            [m["metrics"].get(key, {}).get("std") for _, key in _OVERALL_KEYS],
        )
        for k, m in enumerate(methods)
    ]
    fig = Figure(figsize=(max(6.5, 1.1 * len(methods) + 4.0), 4.0))
    ax = fig.subplots()
    _grouped_bars(ax, series)
    ax.set_title("mIoU by class group (mean ± std over runs)")
    return fig


def plot_aggregate(aggregate: Mapping, path_png: str | Path) -> Path:
    """Grouped bar plot of an aggregate: overall / head / middle / tail mIoU per method.

    Args:
        aggregate: see :func:`aucseg.metrics.aggregate_results`.
        path_png: output file; parent folders are created.

    Returns:
        The path written.
    """
    return _save(aggregate_figure(aggregate), path_png)


def _save(fig: Any, path_png: str | Path, dpi: int = 120) -> Path:
    fig.tight_layout()
    return atomic_write(path_png, lambda f: fig.savefig(f, format="png", dpi=dpi))


def save_figure(fig: Any, path_png: str | Path, dpi: int = 120) -> Path:
    """Write a matplotlib figure as PNG, atomically (:func:`aucseg.fileio.atomic_write`)."""
    return _save(fig, path_png, dpi)
