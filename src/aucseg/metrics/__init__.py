"""Segmentation metrics: confusion matrix, pixel-level AUC, reports, aggregates, tables, plots."""

from aucseg.metrics.aggregate import (
    aggregate_means,
    aggregate_results,
    check_same_classes,
    format_aggregate_per_class,
    format_aggregate_table,
)
from aucseg.metrics.auc import PairwiseAUC
from aucseg.metrics.confusion import ConfusionMatrix
from aucseg.metrics.plots import (
    aggregate_figure,
    per_class_figure,
    plot_aggregate,
    plot_group_comparison,
    plot_per_class,
)
from aucseg.metrics.results_json import load_metrics_json, write_metrics_json
from aucseg.metrics.summary import compare_results, format_table, summarize

__all__ = [
    "ConfusionMatrix",
    "PairwiseAUC",
    "aggregate_figure",
    "aggregate_means",
    "aggregate_results",
    "check_same_classes",
    "compare_results",
    "format_aggregate_per_class",
    "format_aggregate_table",
    "format_table",
    "load_metrics_json",
    "per_class_figure",
    "plot_aggregate",
    "plot_group_comparison",
    "plot_per_class",
    "summarize",
    "write_metrics_json",
]
