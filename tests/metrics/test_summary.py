import json
import math

import pytest
import torch

from aucseg.cli import main
from aucseg.metrics import (
    ConfusionMatrix,
    compare_results,
    format_table,
    load_metrics_json,
    plot_group_comparison,
    plot_per_class,
    summarize,
    write_metrics_json,
)

NAMES = ["road", "car", "bike", "rider"]
GROUPS = {"head": [0], "middle": [1], "tail": [2, 3]}


def _confusion() -> ConfusionMatrix:
    # IoU: road 2/3, car 1/2, bike 1/2, rider NaN (absent)
    cm = ConfusionMatrix(4)
    cm.update(
        torch.tensor([0, 1, 1, 1, 2, 0, 0, 2]),
        torch.tensor([0, 0, 1, 1, 1, 255, 0, 2]),
    )
    return cm


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summarize_percent_groups_and_nan():
    res = summarize(_confusion(), NAMES, GROUPS, auc=0.875)
    assert res["mIoU"] == pytest.approx(100 * (2 / 3 + 1 / 2 + 1 / 2) / 3)
    assert res["aAcc"] == pytest.approx(100 * 5 / 7)
    assert res["mIoU_head"] == pytest.approx(100 * 2 / 3)
    assert res["mIoU_middle"] == pytest.approx(50.0)
    assert res["mIoU_tail"] == pytest.approx(50.0)  # nanmean skips the absent rider
    assert res["AUC"] == pytest.approx(87.5)
    assert res["per_class"][3] == {"name": "rider", "iou": None, "acc": None, "group": "tail"}
    assert [r["group"] for r in res["per_class"]] == ["head", "middle", "tail", "tail"]
    json.dumps(res, allow_nan=False)  # JSON-safe as returned


def test_summarize_without_groups_reports_none():
    res = summarize(_confusion(), NAMES)
    assert res["mIoU_head"] is None and res["mIoU_middle"] is None and res["mIoU_tail"] is None
    assert res["AUC"] is None and res["groups"] is None
    assert "no class groups" in format_table(res)


def test_summarize_rejects_bad_arguments():
    with pytest.raises(ValueError, match="3 class names for 4 classes"):
        summarize(_confusion(), NAMES[:3])
    with pytest.raises(ValueError, match=r"\[7\]"):
        summarize(_confusion(), NAMES, {"tail": [7]})


def test_json_round_trip_and_errors(tmp_path):
    res = summarize(_confusion(), NAMES, GROUPS, auc=float("nan"))
    res["num_images"] = 3
    path = write_metrics_json(tmp_path / "sub" / "m.json", res)
    loaded = load_metrics_json(path)
    assert loaded == res
    assert "NaN" not in path.read_text()
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        load_metrics_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"mIoU": 1}')
    with pytest.raises(ValueError, match="per_class"):
        load_metrics_json(tmp_path / "bad.json")


def test_format_table_lists_classes():
    table = format_table(summarize(_confusion(), NAMES, GROUPS))
    lines = table.splitlines()
    assert "mIoU=55.56" in lines[0]
    row = next(line for line in lines if line.startswith("road"))
    assert "head" in row and "66.67" in row
    assert next(line for line in lines if line.startswith("rider")).split()[-2:] == ["-", "-"]


def test_compare_results_deltas():
    a = summarize(_confusion(), NAMES, GROUPS)
    b = json.loads(json.dumps(a))
    b["mIoU"] = a["mIoU"] + 1.5
    b["per_class"][1]["iou"] = 60.0
    text = compare_results(a, b)
    assert "+1.50" in next(line for line in text.splitlines() if line.startswith("mIoU "))
    assert "+10.00" in next(line for line in text.splitlines() if line.startswith("car"))
    b["per_class"] = b["per_class"][:2]
    assert "different class lists" in compare_results(a, b)


def test_plots_write_png(tmp_path):
    res = summarize(_confusion(), NAMES, GROUPS)
    assert _is_png(plot_per_class(res, tmp_path / "pc.png", order=[2, 0, 3, 1]))
    assert _is_png(plot_group_comparison(res, summarize(_confusion(), NAMES), tmp_path / "g.png"))
    with pytest.raises(ValueError, match="distinct class ids"):
        plot_per_class(res, tmp_path / "x.png", order=[0, 0, 1, 2])


def test_compare_command(tmp_path, capsys):
    a = summarize(_confusion(), NAMES, GROUPS)
    b = dict(a, mIoU=a["mIoU"] + 2.0)
    write_metrics_json(tmp_path / "ce.json", a)
    write_metrics_json(tmp_path / "auc.json", b)
    png = tmp_path / "cmp.png"
    code = main(
        [
            "compare",
            str(tmp_path / "ce.json"),
            str(tmp_path / "auc.json"),
            "--out-png",
            str(png),
            "--labels",
            "CE",
            "AUCSeg",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and _is_png(png)
    assert "CE" in out.splitlines()[0] and "AUCSeg" in out.splitlines()[0]
    assert "+2.00" in out
    code = main(["compare", str(tmp_path / "ce.json"), str(tmp_path / "none.json")])
    assert code == 2
    assert "none.json" in capsys.readouterr().err
    assert math.isfinite(a["mIoU"])


def test_compare_command_default_labels_use_folders_when_stems_match(tmp_path, capsys):
    res = summarize(_confusion(), NAMES, GROUPS)
    write_metrics_json(tmp_path / "ce" / "metrics.json", res)
    write_metrics_json(tmp_path / "auc" / "metrics.json", res)
    assert (
        main(["compare", str(tmp_path / "ce/metrics.json"), str(tmp_path / "auc/metrics.json")])
        == 0
    )
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[:3] == ["metric", "ce", "auc"]
