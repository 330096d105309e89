"""The demo: cross-entropy, class-weighted cross-entropy and AUCSeg on generated long-tail
scenes, same seed and budget, one report.

Steps (every one through the library functions the command line uses):

1. write generated long-tail scenes in the Cityscapes layout (:func:`make_synthetic`): every
   class has its own colour, texture and shape; the 7 rarest are seen in about a tenth of the
   images;
2. scan the training labels and split classes into head / middle / tail (``aucseg stats``);
3. train SegNeXt-T from scratch once per method with the shipped configs
   ``synthetic_ce_segnext_t`` (cross-entropy), ``synthetic_ce_weighted_segnext_t``
   (cross-entropy weighted by median frequency) and ``synthetic_aucseg_segnext_t`` (Square AUC +
   cross-entropy + T-Memory Bank), with the same seed, data, iterations and overrides; the
   class weights, the bank's tail list and the evaluation groups come from step 2;
4. evaluate every final checkpoint (:func:`aucseg.engine.tasks.test`), plot the comparison and
   render a few predictions;
5. write ``report.md`` beside the results.

The budget (:data:`DEMO_ITERATIONS` iterations of batch 4, no evaluation during training) is
the one at which cross-entropy learns every head and middle class on these scenes while the
tail is left to the long-tail methods: it keeps ``make demo`` within about ten minutes on two
CPU cores.
"""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aucseg.config import Config, load_config
from aucseg.data import build_dataset
from aucseg.data.stats import default_rule, load_class_stats, write_class_stats
from aucseg.data.synthetic import make_synthetic
from aucseg.engine import tasks
from aucseg.engine.build import frequency_order
from aucseg.errors import InputError
from aucseg.fileio import write_text_atomic
from aucseg.metrics import (
    aggregate_results,
    format_table,
    plot_aggregate,
    plot_per_class,
    write_metrics_json,
)

#: (key, shipped config, label) of each method, in report order.
RUNS: tuple[tuple[str, str, str], ...] = (
    ("ce", "synthetic_ce_segnext_t", "CE"),
    ("ce_weighted", "synthetic_ce_weighted_segnext_t", "CE (class-weighted)"),
    ("aucseg", "synthetic_aucseg_segnext_t", "AUCSeg"),
)
#: Training iterations of every run (batch 4, 128x128 crops).
DEMO_ITERATIONS = 300
#: Overrides of every run: the final evaluation is the only one.
DEMO_OVERRIDES = ("evaluation.interval=0",)
SUMMARY_KEYS = ("mIoU", "mIoU_head", "mIoU_middle", "mIoU_tail", "mAcc", "aAcc", "AUC")


def demo_config(name: str, data_root: Path, stats_path: Path, overrides: Sequence[str]) -> Config:
    """A shipped synthetic config pointed at the demo's data and class statistics."""
    return load_config(
        name,
        [
            f"data.root={data_root}",
            f"data.class_groups={stats_path}",
            "memory_bank.tail_classes=null",  # the tail of the statistics file
            *DEMO_OVERRIDES,
            *overrides,
        ],
    )


def write_stats(data_root: Path, out_dir: Path, progress: bool) -> Path:
    """Class statistics of the training split (JSON + PNG), as ``aucseg stats`` writes them."""
    dataset = build_dataset("cityscapes", data_root, "train")
    _, _, path = write_class_stats(
        [label for _, label in dataset.samples],
        dataset.num_classes,
        dataset.classes,
        out_dir / "class_stats.json",
        plot=out_dir / "class_stats.png",
        reduce_zero_label=dataset.reduce_zero_label,
        rule=default_rule("cityscapes"),
        workers=1,
        progress=progress,
        title="generated scenes: training pixels per class",
    )
    return path


def run_method(
    key: str, cfg: Config, out: Path, label: str, images: Sequence[Path]
) -> tuple[dict[str, Any], dict[str, float]]:
    """Train one method into ``out/key``, evaluate it, plot it and render ``images``.

    Returns:
        The metrics, and ``{"train": s, "test": s}`` (seconds).
    """
    work_dir = out / key
    shutil.rmtree(work_dir, ignore_errors=True)  # the demo's own run folder: a fresh run
    start = time.perf_counter()
    tasks.train(cfg, work_dir)
    train_s = time.perf_counter() - start
    gc.collect()  # the finished trainer sits in a reference cycle with its loader workers
    checkpoint = work_dir / "checkpoints" / "last.pth"
    start = time.perf_counter()
    metrics = tasks.test(cfg, checkpoint, label=label)
    test_s = time.perf_counter() - start
    write_metrics_json(out / f"metrics_{key}.json", metrics)
    plot_per_class(metrics, out / f"per_class_{key}.png", order=frequency_order(cfg))
    tasks.predict(cfg, checkpoint, list(images), out / "predictions" / key)
    return metrics, {"train": train_s, "test": test_s}


def run_demo(
    out_dir: str | Path = "runs/demo",
    iterations: int | None = DEMO_ITERATIONS,
    num_train: int = 200,
    num_val: int = 100,
    seed: int = 0,
    overrides: Sequence[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole demo and return ``{key: metrics for each of RUNS, "report": path}``.

    Args:
        out_dir: output folder (data/, stats, one run folder per method, plots, report.md).
        iterations: training iterations of each run (None: the configs' ``max_iters``).
        num_train, num_val: number of generated images per split.
        seed: seed of the data generator and of every run.
        overrides: extra ``key=value`` config overrides applied to every run.
        progress: show progress bars.

    Raises:
        InputError: ``iterations`` < 1 or an override the configs refuse (before any run).
    """
    if iterations is not None and iterations < 1:
        raise InputError(f"--iterations must be >= 1, got {iterations}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    begin = time.perf_counter()
    data_root = make_synthetic(
        out / "data", layout="cityscapes", num_train=num_train, num_val=num_val, seed=seed
    )
    stats_path = write_stats(data_root, out, progress)
    extra = [f"runtime.seed={seed}", f"runtime.progress={str(progress).lower()}"]
    if iterations is not None:
        extra.append(f"schedule.max_iters={iterations}")
    extra += list(overrides or [])
    configs = {key: demo_config(name, data_root, stats_path, extra) for key, name, _ in RUNS}
    images = sorted((data_root / "leftImg8bit" / "val").rglob("*.png"))[:3]
    results: dict[str, Any] = {}
    timings: dict[str, dict[str, float]] = {}
    for key, _, label in RUNS:
        results[key], timings[key] = run_method(key, configs[key], out, label, images)
    aggregate = aggregate_results([results[k] for k, _, _ in RUNS], [lb for _, _, lb in RUNS])
    plot_aggregate(aggregate, out / "comparison.png")
    setup = {
        "iterations": configs["ce"].schedule.max_iters,
        "seed": seed,
        "num_train": num_train,
        "num_val": num_val,
        "total_s": time.perf_counter() - begin,
    }
    report = write_report(out, results, timings, stats_path, setup)
    return {**results, "report": report}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def zero_iou_classes(results: Mapping[str, Any], group: str) -> list[str]:
    """Names of the classes of ``group`` whose IoU is 0 (classes absent from the split aside)."""
    return [
        str(r["name"])
        for r in results["per_class"]
        if r.get("group") == group and r.get("iou") is not None and r["iou"] <= 0.0
    ]


def summary_table(results: Mapping[str, Any], timings: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table: one row per method with the group mIoUs, zero-IoU counts and times."""
    titles = ("mIoU", "head", "middle", "tail", "mAcc", "aAcc", "AUC")
    lines = [
        "| method | " + " | ".join(titles) + " | classes at 0 IoU (head+middle / tail) |"
        " train (s) |",
        "| :-- " + "| --: " * (len(titles) + 2) + "|",
    ]
    for key, _, label in RUNS:
        m = results[key]
        zeros = len(zero_iou_classes(m, "head")) + len(zero_iou_classes(m, "middle"))
        row = [_fmt(m.get(k)) for k in SUMMARY_KEYS]
        lines.append(
            f"| {label} | " + " | ".join(row) + f" | {zeros} / "
            f"{len(zero_iou_classes(m, 'tail'))} | {timings[key]['train']:.0f} |"
        )
    return "\n".join(lines)


def per_class_table(results: Mapping[str, Any], stats: Mapping[str, Any]) -> str:
    """Markdown table of per-class IoU per method, classes by decreasing training pixels."""
    counts = [float(c) for c in stats["pixel_counts"]]
    total = sum(counts) or 1.0
    order = sorted(range(len(counts)), key=lambda c: (-counts[c], c))
    labels = [label for _, _, label in RUNS]
    lines = [
        "| class | group | train pixels (%) | " + " | ".join(labels) + " |",
        "| :-- | :-- | --: " + "| --: " * len(labels) + "|",
    ]
    first = results[RUNS[0][0]]["per_class"]
    for c in order:
        ious = [_fmt(results[key]["per_class"][c]["iou"]) for key, _, _ in RUNS]
        lines.append(
            f"| {first[c]['name']} | {first[c].get('group') or '-'} | "
            f"{100 * counts[c] / total:.2f} | " + " | ".join(ious) + " |"
        )
    return "\n".join(lines)


def _story(results: Mapping[str, Any], tail_size: int) -> list[str]:
    """One line per method: how many head/middle and tail classes it leaves at 0 IoU."""
    lines = []
    for key, _, label in RUNS:
        m = results[key]
        missed = zero_iou_classes(m, "head") + zero_iou_classes(m, "middle")
        tail = zero_iou_classes(m, "tail")
        head_text = "learns every head and middle class" if not missed else (
            f"leaves {len(missed)} head/middle classes at 0 IoU ({', '.join(missed)})"
        )  # fmt: skip
        lines.append(
            f"- {label} {head_text}; {len(tail)} of {tail_size} tail classes stay at 0 IoU, "
            f"tail mIoU {_fmt(m.get('mIoU_tail'))}."
        )
    return lines


def write_report(
    out: Path,
    results: Mapping[str, Any],
    timings: Mapping[str, Mapping[str, float]],
    stats_path: Path,
    setup: Mapping[str, Any],
) -> Path:
    """``report.md``: the story, group table, per-class table, plots and prediction overlays."""
    stats = load_class_stats(stats_path)
    tail = stats["groups"]["tail"]
    lines = [
        "# aucseg demo: long-tail methods on generated scenes",
        "",
        f"SegNeXt-T from scratch, {setup['iterations']} iterations of batch 4 (128x128 crops) "
        f"per method, seed {setup['seed']}, {setup['num_train']} training and "
        f"{setup['num_val']} validation images; the same data, budget and overrides for every "
        f"method. Class groups from `{stats_path.name}` (head {stats['groups']['head']}, "
        f"tail {tail}); the class weights and the T-Memory Bank's tail list come from it too. "
        f"Whole demo: {setup['total_s'] / 60:.1f} min.",
        "",
        *_story(results, len(tail)),
        "",
        summary_table(results, timings),
        "",
        "![head/middle/tail comparison](comparison.png)",
        "",
        "## Per-class IoU",
        "",
        per_class_table(results, stats),
        "",
        "![training pixels per class](class_stats.png)",
        "",
    ]
    for key, _, label in RUNS:
        lines += [f"## {label}", "", "```", format_table(results[key]), "```", ""]
        lines += [f"![per-class IoU](per_class_{key}.png)", ""]
        overlays = sorted((out / "predictions" / key).glob("*_overlay.png"))
        lines += [f"![{p.stem}](predictions/{key}/{p.name})" for p in overlays] + [""]
    return write_text_atomic(out / "report.md", "\n".join(lines))
