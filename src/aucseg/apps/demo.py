"""The demo: cross-entropy versus AUCSeg on generated long-tail scenes, same budget, one report.

Steps (every one through the library functions the command line uses):

1. write generated long-tail scenes in the Cityscapes layout (:func:`make_synthetic`);
2. scan the training labels and split classes into head / middle / tail (``aucseg stats``);
3. train SegNeXt-T twice with the shipped configs ``synthetic_ce_segnext_t`` (cross-entropy) and
   ``synthetic_aucseg_segnext_t`` (Square AUC + cross-entropy + T-Memory Bank), same seed,
   iterations and data; the bank's tail list and the evaluation groups come from step 2;
4. evaluate both final checkpoints, plot the comparison and render a few predictions;
5. write ``report.md`` beside the results.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from aucseg.config import Config, load_config
from aucseg.data import build_dataset
from aucseg.data.stats import default_rule, load_class_stats, write_class_stats
from aucseg.data.synthetic import make_synthetic
from aucseg.engine import tasks
from aucseg.engine.build import frequency_order
from aucseg.fileio import write_text_atomic
from aucseg.metrics import format_table, plot_group_comparison, plot_per_class, write_metrics_json

RUNS = (("ce", "synthetic_ce_segnext_t", "CE"), ("aucseg", "synthetic_aucseg_segnext_t", "AUCSeg"))


def _demo_config(name: str, data_root: Path, stats_path: Path, overrides: list[str]) -> Config:
    """A shipped synthetic config pointed at the demo's data and class groups."""
    return load_config(
        name,
        [
            f"data.root={data_root}",
            f"data.class_groups={stats_path}",
            "memory_bank.tail_classes=null",
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


def run_demo(
    out_dir: str | Path = "runs/demo",
    iterations: int | None = None,
    num_train: int = 200,
    num_val: int = 50,
    seed: int = 0,
    overrides: list[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole demo and return ``{"ce": metrics, "aucseg": metrics, "report": path}``.

    Args:
        out_dir: output folder (data/, stats, the two run folders, plots, report.md).
        iterations: training iterations of each run (default: the configs' ``max_iters``).
        num_train, num_val: number of generated images per split.
        seed: seed of the data generator and of both runs.
        overrides: extra ``key=value`` config overrides applied to both runs.
        progress: show progress bars.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_root = make_synthetic(
        out / "data", layout="cityscapes", num_train=num_train, num_val=num_val, seed=seed
    )
    stats_path = write_stats(data_root, out, progress)
    extra = [f"runtime.seed={seed}", f"runtime.progress={str(progress).lower()}"]
    if iterations is not None:
        extra.append(f"schedule.max_iters={iterations}")
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    val_images = sorted((data_root / "leftImg8bit" / "val").rglob("*.png"))[:3]
    for key, config_name, label in RUNS:
        cfg = _demo_config(config_name, data_root, stats_path, extra + list(overrides or []))
        work_dir = out / key
        shutil.rmtree(work_dir, ignore_errors=True)  # the demo's own run folder: a fresh run
        start = time.perf_counter()
        tasks.train(cfg, work_dir)
        timings[key] = time.perf_counter() - start
        checkpoint = work_dir / "checkpoints" / "last.pth"
        metrics = tasks.test(cfg, checkpoint, label=label)
        write_metrics_json(out / f"metrics_{key}.json", metrics)
        plot_per_class(metrics, out / f"per_class_{key}.png", order=frequency_order(cfg))
        tasks.predict(cfg, checkpoint, val_images, out / "predictions" / key)
        results[key] = metrics
    plot_group_comparison(
        results["ce"], results["aucseg"], out / "comparison.png", labels=("CE", "AUCSeg")
    )
    report = write_report(out, results, timings, stats_path)
    return {"ce": results["ce"], "aucseg": results["aucseg"], "report": report}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def write_report(
    out: Path, results: dict[str, Any], timings: dict[str, float], stats_path: Path
) -> Path:
    """``report.md``: group table, per-class table, plots and prediction overlays."""
    stats = load_class_stats(stats_path)
    keys = ("mIoU", "mIoU_head", "mIoU_middle", "mIoU_tail", "mAcc", "aAcc", "AUC")
    lines = [
        "# aucseg demo: cross-entropy vs AUCSeg on generated long-tail scenes",
        "",
        "Same model (SegNeXt-T from scratch), data, seed and iterations; AUCSeg adds the Square",
        "AUC loss and the T-Memory Bank (batch placement) with the tail list of",
        f"`{stats_path.name}` ({len(stats['groups']['tail'])} tail classes:"
        f" {stats['groups']['tail']}).",
        "",
        "| run | " + " | ".join(keys) + " | train time (s) |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for key, _, label in RUNS:
        row = [_fmt(results[key].get(k)) for k in keys]
        lines.append(f"| {label} | " + " | ".join(row) + f" | {timings[key]:.0f} |")
    lines += [
        "",
        "![head/middle/tail comparison](comparison.png)",
        "",
        "![training pixels per class](class_stats.png)",
        "",
    ]
    for key, _, label in RUNS:
        lines += [
            f"## {label}",
            "",
            "```",
            format_table(results[key]),
            "```",
            "",
            f"![per-class IoU]({f'per_class_{key}.png'})",
            "",
        ]
        overlays = sorted((out / "predictions" / key).glob("*_overlay.png"))
        lines += [f"![{p.stem}](predictions/{key}/{p.name})" for p in overlays] + [""]
    return write_text_atomic(out / "report.md", "\n".join(lines))
