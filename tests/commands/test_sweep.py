"""``aucseg sweep`` on tiny generated scenes: 2 configs x 2 seeds, resume, summary, bad input."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from aucseg.cli import main
from aucseg.commands.compare import run as compare_run
from aucseg.commands.sweep import check_configs, plan_runs
from aucseg.config import SHIPPED_CONFIGS, config_to_dict, load_config
from aucseg.data.synthetic import make_synthetic
from aucseg.errors import InputError
from aucseg.metrics import aggregate_results, format_aggregate_table, load_metrics_json

CONFIGS = ["synthetic_ce_segnext_t", "synthetic_aucseg_segnext_t"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scenes")
    return make_synthetic(root, num_train=6, num_val=2, height=64, width=128)


def _tiny(root: Path) -> list[str]:
    values = {
        "data.root": root,
        "data.num_workers": 0,
        "data.batch_size": 2,
        "data.crop_size": "[64,64]",
        "data.img_scale": "[128,64]",
        "schedule.warmup_iters": 1,
        "evaluation.interval": 0,
        "runtime.tensorboard": "false",
        "memory_bank.tail_classes": "[12,13,14,15,16,17,18]",
    }
    return ["--no-progress", "--device", "cpu", "--set", *[f"{k}={v}" for k, v in values.items()]]


def _iteration(work_dir: Path) -> int:
    state = torch.load(work_dir / "checkpoints" / "last.pth", weights_only=True)
    return int(state["iteration"])


def _sweep(out: Path, root: Path, *extra: str) -> int:
    return main(["sweep", *CONFIGS, "--out", str(out), *extra, *_tiny(root)])


@pytest.mark.slow
def test_two_configs_two_seeds_then_resume(tmp_path, data_root, capsys):
    out = tmp_path / "sweep"
    assert _sweep(out, data_root, "--seeds", "0", "1", "--iterations", "2") == 0
    printed = capsys.readouterr().out
    results, labels = [], []
    for label in CONFIGS:
        for seed in (0, 1):
            run = out / label / f"seed{seed}"
            assert _iteration(run) == 2
            assert f"seed: {seed}" in (run / "config.yaml").read_text()
            metrics = load_metrics_json(run / "metrics.json")
            assert metrics["provenance"]["label"] == label
            assert metrics["provenance"]["iteration"] == 2
            results.append(metrics)
            labels.append(label)
    # the table is the one `aucseg compare` makes from the same files
    table = format_aggregate_table(aggregate_results(results, labels))
    assert table in printed
    assert table in (out / "summary.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert [m["label"] for m in summary["methods"]] == CONFIGS
    assert [m["runs"] for m in summary["methods"]] == [2, 2]
    assert {r["status"] for r in summary["runs"]} == {"trained"}
    assert (out / "summary.png").stat().st_size > 0
    assert compare_run_output(out, capsys) == table

    # the same command again: nothing is trained or evaluated again
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/seed*/checkpoints/last.pth")}
    stamps |= {p: p.stat().st_mtime_ns for p in out.glob("*/seed*/metrics.json")}
    assert _sweep(out, data_root, "--seeds", "0", "1", "--iterations", "2") == 0
    again = capsys.readouterr().out
    assert table in again
    assert again.count("already trained to iteration 2: not trained again") == 4
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    rerun = json.loads((out / "summary.json").read_text())
    assert {r["status"] for r in rerun["runs"]} == {"done"}
    assert all(r["train_s"] == 0 and r["test_s"] == 0 for r in rerun["runs"])

    # a longer budget continues the runs from their last.pth and evaluates them again; a
    # summary of its own name leaves the first one as it was
    first = (out / "summary.md").read_text()
    assert _sweep(out, data_root, "--seeds", "1", "--iterations", "3", "--summary", "long") == 0
    capsys.readouterr()
    longer = json.loads((out / "long.json").read_text())
    assert [r["status"] for r in longer["runs"]] == ["resumed", "resumed"]
    assert [m["runs"] for m in longer["methods"]] == [1, 1]
    for label in CONFIGS:
        assert _iteration(out / label / "seed0") == 2
        run = out / label / "seed1"
        assert _iteration(run) == 3
        assert load_metrics_json(run / "metrics.json")["provenance"]["iteration"] == 3
    assert (out / "summary.md").read_text() == first
    assert (out / "long.md").is_file() and (out / "long.png").is_file()


def compare_run_output(out: Path, capsys) -> str:
    """The first table `aucseg compare` prints for the sweep's metrics files."""
    files = [f"{out}/{label}/seed*/metrics.json" for label in CONFIGS]
    args = argparse.Namespace(files=files, labels=None, out_json=None, plot=None, per_class=False)
    capsys.readouterr()
    assert compare_run(args) == 0
    return capsys.readouterr().out.split("\n\n")[0].strip()


def test_plan_labels_runs_by_config_name(tmp_path):
    runs = plan_runs(["a/ce.yaml", "b/auc.yaml"], [0, 2], tmp_path)
    assert [(r.label, r.seed) for r in runs] == [("ce", 0), ("ce", 2), ("auc", 0), ("auc", 2)]
    assert runs[1].work_dir == tmp_path / "ce" / "seed2"
    with pytest.raises(InputError, match="two configs are named 'ce'"):
        plan_runs(["a/ce.yaml", "b/ce.yaml"], [0], tmp_path)
    with pytest.raises(InputError, match="repeats a seed"):
        plan_runs(["ce.yaml"], [1, 1], tmp_path)


def test_bad_config_fails_before_any_run(tmp_path, data_root, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: segnext_tiny, num_classes: 19, depth: 3}\n")
    out = tmp_path / "sweep"
    argv = ["sweep", CONFIGS[0], str(bad), "--seeds", "0", "--out", str(out)]
    code = main([*argv, *_tiny(data_root)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("aucseg sweep: error:") and "'model.depth'" in err
    assert not (out / CONFIGS[0]).exists()


def test_bad_iterations_and_summary_name(tmp_path, capsys):
    code = main(["sweep", CONFIGS[0], "--out", str(tmp_path), "--iterations", "0"])
    assert code == 2
    assert "--iterations must be >= 1, got 0" in capsys.readouterr().err
    assert main(["sweep", CONFIGS[0], "--out", str(tmp_path), "--summary", "a/b"]) == 2
    assert "--summary 'a/b' must be a plain file name" in capsys.readouterr().err


# Every shipped config for the generated scenes: what its name promises, on one recipe.
AUC_CE = ["square_auc", "cross_entropy"]
SYNTHETIC = {
    "synthetic_ce_segnext_t": (["cross_entropy"], "uniform", None),
    "synthetic_ce_weighted_segnext_t": (["cross_entropy"], "uniform", None),
    "synthetic_focal_segnext_t": (["focal"], "uniform", None),
    "synthetic_lovasz_segnext_t": (["lovasz", "cross_entropy"], "uniform", None),
    "synthetic_logit_adjusted_segnext_t": (["logit_adjusted"], "uniform", None),
    "synthetic_rare_class_segnext_t": (["cross_entropy"], "rare_class", None),
    "synthetic_aucseg_segnext_t": (AUC_CE, "uniform", "batch/tail/random"),
    "synthetic_auc_segnext_t": (AUC_CE, "uniform", None),
    "synthetic_ce_bank_segnext_t": (["cross_entropy"], "uniform", "batch/tail/random"),
    "synthetic_aucseg_bank_all_segnext_t": (AUC_CE, "uniform", "batch/all/random"),
    "synthetic_aucseg_fifo_segnext_t": (AUC_CE, "uniform", "batch/tail/fifo"),
    "synthetic_aucseg_lifo_segnext_t": (AUC_CE, "uniform", "batch/tail/lifo"),
    "synthetic_aucseg_sample_segnext_t": (AUC_CE, "uniform", "sample/tail/random"),
}


def test_synthetic_configs_share_one_recipe(tmp_path):
    shipped = {p.stem for p in SHIPPED_CONFIGS.glob("synthetic_*.yaml")}
    assert shipped == set(SYNTHETIC)
    runs = plan_runs(sorted(SYNTHETIC), [0], tmp_path)
    check_configs(runs, [], None)  # every one resolves
    base = config_to_dict(load_config("synthetic_ce_segnext_t"))
    for name, (losses, sampler, bank) in SYNTHETIC.items():
        cfg = load_config(name)
        assert [t.name for t in cfg.loss.terms] == losses, name
        assert cfg.data.sampler.name == sampler, name
        mb = cfg.memory_bank
        assert (f"{mb.placement}/{mb.classes}/{mb.update}" if mb.enabled else None) == bank, name
        if bank is not None:
            assert mb.tail_classes == list(range(12, 19)), name
        data = config_to_dict(cfg)
        for section in ("model", "optimizer", "schedule", "evaluation", "runtime"):
            assert data[section] == base[section], (name, section)
        for key in ("crop_size", "img_scale", "batch_size", "root", "dataset"):
            assert data["data"][key] == base["data"][key], (name, key)
    weighted = load_config("synthetic_ce_weighted_segnext_t").loss.terms[0].options()
    assert weighted["class_weight"] == "median"
