import json

import pytest
import torch

from aucseg.metrics import ConfusionMatrix, compare_results, format_table, summarize

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


def test_format_table_lists_classes():
    table = format_table(summarize(_confusion(), NAMES, GROUPS))
    lines = table.splitlines()
    assert "mIoU=55.56" in lines[0]
    row = next(line for line in lines if line.startswith("road"))
    assert "head" in row and "66.67" in row
    assert next(line for line in lines if line.startswith("rider")).split()[-2:] == ["-", "-"]


def test_format_table_uses_the_stored_class_names():
    custom = ["Straße", "vending machine", "kelp", "x"]
    res = summarize(_confusion(), custom, GROUPS)
    lines = format_table(res).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("class"))
    rows = lines[header + 2 :]
    assert [line[: len("vending machine")].rstrip() for line in rows] == custom
    assert "66.67" in rows[0] and "road" not in format_table(res)
    # all value columns line up although the names differ in length
    assert len({len(line) for line in rows}) == 1


def test_format_table_shows_provenance():
    res = summarize(_confusion(), NAMES, GROUPS)
    res["provenance"] = {"checkpoint": "runs/ce/last.pth", "iteration": 80, "split": "val"}
    lines = format_table(res).splitlines()
    assert lines[1] == "checkpoint=runs/ce/last.pth  iteration=80  split=val"


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
