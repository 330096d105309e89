"""``aucseg sweep CONFIG... --seeds 0 1 2 --out DIR``: train and test configs x seeds, compare.

Every config is trained once per seed into ``DIR/<config>/seed<k>`` (``runtime.seed=k``), its
last checkpoint is evaluated into ``DIR/<config>/seed<k>/metrics.json`` with the config name as
method label, and the runs are aggregated as ``aucseg compare`` does: mean ± sample std per
config, printed and written to ``DIR/summary.md``, ``DIR/summary.json`` and ``DIR/summary.png``
(``--summary NAME`` names them ``NAME.*``, so two sweeps that share runs keep both tables).

A sweep resumes: a run whose ``last.pth`` already reached ``schedule.max_iters`` is not trained
again, a run stopped part-way continues from its ``last.pth`` (``aucseg train --resume``), and a
finished run whose ``metrics.json`` belongs to that checkpoint is not evaluated again. Every
config is resolved before the first run starts, so a typo in the last one fails at once. Runs
go one after the other in this process, through :mod:`aucseg.engine.tasks`.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aucseg.commands._common import add_runtime_arguments, add_set_argument, runtime_overrides
from aucseg.config import Config, load_config
from aucseg.engine import tasks
from aucseg.engine.checkpoint import checkpoint_dir, load_checkpoint_file
from aucseg.errors import InputError
from aucseg.fileio import check_writable_dir, write_text_atomic
from aucseg.metrics import (
    aggregate_means,
    aggregate_results,
    compare_results,
    format_aggregate_per_class,
    format_aggregate_table,
    load_metrics_json,
    plot_aggregate,
    write_metrics_json,
)


@dataclass
class SweepRun:
    """One config x seed of a sweep and what happened to it.

    ``status`` is ``trained``, ``resumed`` or ``done`` (already finished: not trained again);
    the times are seconds spent in this invocation (0 for a step that was skipped).
    """

    label: str
    config: str
    seed: int
    work_dir: Path
    status: str = ""
    iterations: int | None = None
    train_s: float = 0.0
    test_s: float = 0.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``aucseg sweep``."""
    parser.description = (
        "Train every CONFIG once per seed into OUT/<config>/seed<k>, evaluate each last "
        "checkpoint into OUT/<config>/seed<k>/metrics.json (label = config name) and write the "
        "mean ± std comparison to OUT/summary.md, summary.json and summary.png. Running the "
        "same command again skips finished runs and continues interrupted ones."
    )
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="YAML configs or names")
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[0, 1, 2], help="run seeds (default 0 1 2)"
    )
    parser.add_argument("--out", required=True, help="sweep folder (created if missing)")
    parser.add_argument(
        "--iterations", type=int, default=None, help="iterations per run (schedule.max_iters)"
    )
    parser.add_argument(
        "--summary",
        default="summary",
        metavar="NAME",
        help="file name of the comparison: OUT/NAME.md, .json, .png (default summary); two "
        "sweeps that share runs in one OUT keep their own comparison",
    )
    add_runtime_arguments(parser)
    add_set_argument(parser)


def plan_runs(configs: Sequence[str], seeds: Sequence[int], out: Path) -> list[SweepRun]:
    """One :class:`SweepRun` per config x seed, labelled by the config's file name.

    Raises:
        InputError: no seeds, a repeated seed, or two configs with the same name (they would
            share a run folder).
    """
    if not seeds:
        raise InputError("--seeds is empty; give at least one seed, e.g. --seeds 0 1 2")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"--seeds {list(seeds)} repeats a seed; give each seed once")
    labels = [Path(c).name.removesuffix(".yaml").removesuffix(".yml") for c in configs]
    for label in labels:
        if labels.count(label) > 1:
            raise InputError(
                f"two configs are named {label!r}; their runs would share {out / label}; "
                "rename one of the files"
            )
    return [
        SweepRun(label, str(config), int(seed), out / label / f"seed{seed}")
        for config, label in zip(configs, labels, strict=True)
        for seed in seeds
    ]


def run_overrides(run: SweepRun, overrides: Sequence[str], iterations: int | None) -> list[str]:
    """``--set`` items of one run: the user's, then its seed and ``--iterations``."""
    extra = [f"runtime.seed={run.seed}"]
    if iterations is not None:
        extra.append(f"schedule.max_iters={iterations}")
    return [*overrides, *extra]


def check_configs(runs: Sequence[SweepRun], overrides: Sequence[str], iterations: int | None):
    """Resolve every run's config before any training (bad input fails before the first run).

    Raises:
        InputError, FileNotFoundError: a config that does not load with these overrides.
    """
    for run in runs:
        load_config(run.config, run_overrides(run, overrides, iterations))


def last_iteration(work_dir: Path) -> int | None:
    """The iteration stored in ``WORK_DIR/checkpoints/last.pth``, or None without one."""
    path = checkpoint_dir(work_dir) / "last.pth"
    if not path.is_file():
        return None
    return int(load_checkpoint_file(path).get("iteration") or 0)


def train_run(run: SweepRun, overrides: list[str]) -> Config:
    """Train ``run`` (fresh, resumed, or not at all when finished); returns its config."""
    done = last_iteration(run.work_dir)
    if done is None:
        cfg, resume_from = tasks.train_config(run.config, run.work_dir, overrides)
        run.status = "trained"
    else:
        cfg, resume_from = tasks.train_config(None, run.work_dir, overrides, resume=True)
        run.status = "done" if done >= cfg.schedule.max_iters else "resumed"
    run.iterations = cfg.schedule.max_iters if run.status != "done" else done
    if run.status != "done":
        start = time.perf_counter()
        summary = tasks.train(cfg, run.work_dir, resume_from)
        run.train_s = time.perf_counter() - start
        gc.collect()  # the finished trainer sits in a reference cycle with its loader workers
        run.iterations = int(summary.get("iteration", run.iterations))
    return cfg


def _stored_metrics(path: Path, iteration: int | None) -> dict[str, Any] | None:
    """``path``'s results if they were computed from the checkpoint at ``iteration``."""
    if not path.is_file():
        return None
    results = load_metrics_json(path)
    if (results.get("provenance") or {}).get("iteration") != iteration:
        return None
    return results


def test_run(run: SweepRun, test_overrides: list[str]) -> dict[str, Any]:
    """Evaluate the run's last checkpoint with the config stored in it into metrics.json."""
    metrics_path = run.work_dir / "metrics.json"
    if run.status == "done":
        stored = _stored_metrics(metrics_path, run.iterations)
        if stored is not None:
            return stored
    checkpoint = checkpoint_dir(run.work_dir) / "last.pth"
    cfg = tasks.config_from_checkpoint(checkpoint, test_overrides)
    plot = run.work_dir / "metrics_per_class.png"
    start = time.perf_counter()
    results = tasks.test(cfg, checkpoint, out=metrics_path, plot=plot, label=run.label)
    run.test_s = time.perf_counter() - start
    return results


def runs_table(runs: Sequence[SweepRun]) -> str:
    """Markdown table of the runs: config, seed, iterations, status and seconds spent."""
    lines = [
        "| config | seed | iterations | status | train (s) | test (s) |",
        "| :-- | --: | --: | :-- | --: | --: |",
    ]
    for r in runs:
        lines.append(
            f"| {r.label} | {r.seed} | {r.iterations} | {r.status} | {r.train_s:.0f} | "
            f"{r.test_s:.0f} |"
        )
    return "\n".join(lines)


def write_summary(
    out: Path, runs: Sequence[SweepRun], results: Sequence[dict], name: str = "summary"
) -> dict:
    """Aggregate the runs by label; print and write ``NAME.md``, ``NAME.json``, ``NAME.png``.

    Returns:
        The aggregate dict (``aucseg compare --out-json``'s) with the ``runs`` records added.
    """
    sources = [str(r.work_dir / "metrics.json") for r in runs]
    aggregate = aggregate_results(results, [r.label for r in runs], sources=sources)
    table = format_aggregate_table(aggregate)
    parts = [f"# aucseg sweep: {len(aggregate['methods'])} configs", "", table]
    methods = aggregate["methods"]
    if len(methods) == 2:
        pair = (methods[0]["label"], methods[1]["label"])
        means = [aggregate_means(m) for m in methods]
        parts += ["", "```", compare_results(*means, labels=pair), "```"]
    parts += ["", "## Per-class IoU", "", format_aggregate_per_class(aggregate)]
    parts += ["", "## Runs", "", runs_table(runs), "", f"![{name}]({name}.png)", ""]
    print(table)
    aggregate["runs"] = [{**asdict(r), "work_dir": str(r.work_dir)} for r in runs]
    write_text_atomic(out / f"{name}.md", "\n".join(parts))
    write_metrics_json(out / f"{name}.json", aggregate)
    plot_aggregate(aggregate, out / f"{name}.png")
    print(f"wrote {out / name}.md, {name}.json, {name}.png")
    return aggregate


def sweep(
    configs: Sequence[str],
    seeds: Sequence[int],
    out: str | Path,
    overrides: Sequence[str] = (),
    iterations: int | None = None,
    test_overrides: Sequence[str] = (),
    summary: str = "summary",
) -> dict[str, Any]:
    """Train and test every config x seed under ``out``, then aggregate (see module docstring).

    Args:
        configs: YAML configs or shipped config names.
        seeds: run seeds (``runtime.seed``).
        out: sweep folder.
        overrides: ``key=value`` overrides for every run.
        iterations: ``schedule.max_iters`` of every run (default: each config's).
        test_overrides: overrides applied to the stored config when evaluating (device).
        summary: file name (no suffix) of the comparison files in ``out``.

    Returns:
        The aggregate dict written to ``out/<summary>.json``.

    Raises:
        InputError: bad arguments or configs (before any run starts).
    """
    if iterations is not None and iterations < 1:
        raise InputError(f"--iterations must be >= 1, got {iterations}")
    if not summary or Path(summary).name != summary:
        raise InputError(f"--summary {summary!r} must be a plain file name, e.g. summary")
    out = check_writable_dir(Path(out), "--out")
    runs = plan_runs(configs, seeds, out)
    check_configs(runs, overrides, iterations)
    results = []
    for i, run in enumerate(runs, 1):
        print(f"[{i}/{len(runs)}] {run.label} seed {run.seed} -> {run.work_dir}", flush=True)
        train_run(run, run_overrides(run, overrides, iterations))
        if run.status == "done":
            print(f"  already trained to iteration {run.iterations}: not trained again")
        results.append(test_run(run, list(test_overrides)))
    return write_summary(out, runs, results, summary)


def run(args: argparse.Namespace) -> int:
    """Run the sweep; print the comparison table."""
    overrides = runtime_overrides(args)
    device = [f"runtime.device={args.device}"] if args.device else []
    sweep(args.configs, args.seeds, args.out, overrides, args.iterations, device, args.summary)
    return 0
