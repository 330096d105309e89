"""Segmentation metrics: confusion matrix, pixel-level AUC, reports, tables and plots."""

from aucseg.metrics.auc import PairwiseAUC
from aucseg.metrics.confusion import ConfusionMatrix
from aucseg.metrics.plots import plot_group_comparison, plot_per_class
from aucseg.metrics.summary import (
    compare_results,
    format_table,
    load_metrics_json,
    summarize,
    write_metrics_json,
)

__all__ = [
    "ConfusionMatrix",
    "PairwiseAUC",
    "compare_results",
    "format_table",
    "load_metrics_json",
    "plot_group_comparison",
    "plot_per_class",
    "summarize",
    "write_metrics_json",
]
