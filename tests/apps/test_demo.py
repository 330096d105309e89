"""The demo end to end on a tiny budget: data, stats, one run per method, metrics, report."""

from __future__ import annotations

import json

import pytest
import yaml

from aucseg.apps.demo import RUNS, per_class_table, summary_table, zero_iou_classes
from aucseg.cli import main

TINY = ["--iterations", "2", "--num-train", "4", "--num-val", "2", "--no-progress", "--set",
        "data.num_workers=0", "runtime.tensorboard=false", "runtime.device=cpu"]  # fmt: skip


@pytest.mark.slow
def test_demo_writes_report_for_every_method(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    stats = json.loads((out / "class_stats.json").read_text())
    tail = stats["groups"]["tail"]
    configs = {}
    for key, _, label in RUNS:
        assert f"{label}: mIoU" in printed
        metrics = json.loads((out / f"metrics_{key}.json").read_text())
        assert metrics["num_images"] == 2
        assert metrics["provenance"]["label"] == label
        assert [c["group"] for c in metrics["per_class"]].count("tail") == len(tail)
        assert (out / f"per_class_{key}.png").stat().st_size > 0
        assert len(list((out / "predictions" / key).glob("*_overlay.png"))) == 2
        configs[key] = yaml.safe_load((out / key / "config.yaml").read_text())
    # one budget, seed and data for every method; they differ in the loss and the bank only
    for key, cfg in configs.items():
        assert cfg["schedule"]["max_iters"] == 2 and cfg["runtime"]["seed"] == 0
        assert cfg["evaluation"]["interval"] == 0
        assert cfg["data"]["class_groups"] == str((out / "class_stats.json").resolve())
        for section in ("model", "data", "optimizer", "schedule", "evaluation", "runtime"):
            assert cfg[section] == configs["ce"][section], (key, section)
    assert configs["aucseg"]["memory_bank"]["enabled"] is True
    assert configs["aucseg"]["memory_bank"]["tail_classes"] is None  # the stats file's tail
    assert configs["ce"]["memory_bank"]["enabled"] is False
    assert configs["ce_weighted"]["loss"]["terms"][0]["class_weight"] == "median"
    report = (out / "report.md").read_text()
    assert all(f"| {label} |" in report for _, _, label in RUNS)
    assert "2 iterations of batch 4" in report
    assert (out / "comparison.png").stat().st_size > 0


def test_demo_rejects_bad_iterations(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--iterations", "0"]) == 2
    assert "--iterations must be >= 1, got 0" in capsys.readouterr().err


def _results(ious: list[float | None], groups: list[str]) -> dict:
    rows = [
        {"name": f"c{i}", "iou": iou, "acc": iou, "group": g}
        for i, (iou, g) in enumerate(zip(ious, groups, strict=True))
    ]
    return {"mIoU": 1.0, "mIoU_tail": 0.5, "per_class": rows}


def test_zero_iou_counts_and_tables():
    groups = ["head", "middle", "middle", "tail", "tail"]
    res = {
        "ce": _results([90.0, 0.0, 12.0, 0.0, None], groups),
        "ce_weighted": _results([80.0, 5.0, 10.0, 3.0, None], groups),
        "aucseg": _results([85.0, 4.0, 0.0, 0.0, None], groups),
    }
    assert zero_iou_classes(res["ce"], "middle") == ["c1"]
    assert zero_iou_classes(res["ce"], "tail") == ["c3"]  # c4 is absent, not missed
    timings = {key: {"train": 10.0, "test": 1.0} for key, _, _ in RUNS}
    rows = summary_table(res, timings).splitlines()
    assert rows[2].startswith("| CE | 1.00 | n/a | n/a | 0.50 |")
    assert rows[2].endswith("| 1 / 1 | 10 |")
    assert rows[3].endswith("| 0 / 0 | 10 |")
    stats = {"pixel_counts": [50, 10, 30, 0, 10]}
    lines = per_class_table(res, stats).splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| c0", "| c2", "| c1", "| c4", "| c3"]
    assert lines[2] == "| c0 | head | 50.00 | 90.00 | 80.00 | 85.00 |"
