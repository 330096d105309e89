"""The demo end to end on a tiny budget: data, stats, two runs, metrics, plots and report."""

from __future__ import annotations

import json

from aucseg.cli import main


def test_demo_writes_report_for_both_runs(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        ["demo", "--out", str(out), "--iterations", "2", "--num-train", "4", "--num-val", "2",
         "--no-progress", "--set", "data.num_workers=0", "runtime.tensorboard=false",
         "evaluation.interval=0", "data.batch_size=2", "data.crop_size=[64,64]",
         "data.img_scale=[128,64]"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "CE: mIoU" in printed and "AUCSeg: mIoU" in printed
    stats = json.loads((out / "class_stats.json").read_text())
    tail = stats["groups"]["tail"]
    for key in ("ce", "aucseg"):
        metrics = json.loads((out / f"metrics_{key}.json").read_text())
        assert metrics["num_images"] == 2
        assert [c["group"] for c in metrics["per_class"]].count("tail") == len(tail)
        assert (out / f"per_class_{key}.png").stat().st_size > 0
        assert len(list((out / "predictions" / key).glob("*_overlay.png"))) == 2
        state = (out / key / "config.yaml").read_text()
        assert "max_iters: 2" in state
    aucseg_cfg = (out / "aucseg" / "config.yaml").read_text()
    assert "enabled: true" in aucseg_cfg  # the AUCSeg run uses the memory bank
    report = (out / "report.md").read_text()
    assert "| CE |" in report and "| AUCSeg |" in report
    assert (out / "comparison.png").stat().st_size > 0


def test_demo_rejects_bad_iterations(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--iterations", "0"]) == 2
