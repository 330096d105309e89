import json

import numpy as np
import pytest

from aucseg.errors import InputError
from aucseg.metrics import (
    aggregate_means,
    aggregate_results,
    compare_results,
    format_aggregate_per_class,
    format_aggregate_table,
)

KEYS = ["mIoU", "mIoU_head", "mIoU_middle", "mIoU_tail", "mAcc", "aAcc"]


def _runs(make_results):
    """Three CE runs (class 3 absent from the second) and two AUC runs."""
    ce = [make_results(0), make_results(1, absent=[3]), make_results(2)]
    auc = [make_results(10), make_results(11)]
    return ce, auc


def test_means_and_sample_std_match_numpy(make_results):
    ce, auc = _runs(make_results)
    agg = aggregate_results([ce[0], auc[0], ce[1], auc[1], ce[2]], ["CE", "AUC", "CE", "AUC", "CE"])
    assert [m["label"] for m in agg["methods"]] == ["CE", "AUC"]  # order of first appearance
    assert [m["runs"] for m in agg["methods"]] == [3, 2]
    for method, runs in zip(agg["methods"], (ce, auc), strict=True):
        for key in KEYS:
            values = [r[key] for r in runs]
            stat = method["metrics"][key]
            assert stat["n"] == len(runs)
            assert stat["mean"] == pytest.approx(np.mean(values))
            assert stat["std"] == pytest.approx(np.std(values, ddof=1))
        assert method["metrics"]["AUC"] == {"mean": None, "std": None, "n": 0}
    ce_iou = agg["methods"][0]["per_class"]
    for c in (0, 4):
        values = [r["per_class"][c]["iou"] for r in ce]
        assert ce_iou[c]["iou"]["mean"] == pytest.approx(np.mean(values))
        assert ce_iou[c]["iou"]["std"] == pytest.approx(np.std(values, ddof=1))
    # class 3 is absent from one CE run: its mean is over the two runs that have it
    present = [ce[0]["per_class"][3]["acc"], ce[2]["per_class"][3]["acc"]]
    assert ce_iou[3]["acc"] == {
        "mean": pytest.approx(np.mean(present)),
        "std": pytest.approx(np.std(present, ddof=1)),
        "n": 2,
    }
    assert [r["name"] for r in ce_iou] == agg["class_names"]
    assert [r["group"] for r in ce_iou] == ["head", "head", "middle", "tail", "tail"]
    json.dumps(agg, allow_nan=False)


def test_single_run_has_no_std(make_results):
    res = make_results(5)
    agg = aggregate_results([res], ["only"], sources=["a.json"])
    stat = agg["methods"][0]["metrics"]["mIoU"]
    assert stat == {"mean": pytest.approx(res["mIoU"]), "std": None, "n": 1}
    assert agg["methods"][0]["files"] == ["a.json"]
    assert f"{res['mIoU']:.2f} ± - (1)" in format_aggregate_table(agg)


def test_markdown_table(make_results):
    ce, auc = _runs(make_results)
    agg = aggregate_results([*ce, *auc], ["CE"] * 3 + ["AUC|x"] * 2)
    lines = format_aggregate_table(agg).splitlines()
    assert lines[0] == (
        "| method | runs | mIoU | head mIoU | middle mIoU | tail mIoU | mAcc | aAcc |"
    )
    assert lines[1] == "| :-- | --: | --: | --: | --: | --: | --: | --: |"
    assert len(lines) == 4  # AUC column left out: no run has it
    cells = [c.strip() for c in lines[2].strip("|").split(" | ")]
    assert cells[:2] == ["CE", "3"]
    for cell, key in zip(cells[2:], KEYS, strict=True):
        values = [r[key] for r in ce]
        assert cell == f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f} (3)"
    assert lines[3].startswith("| AUC\\|x | 2 | ")  # '|' in a label is escaped


def test_per_class_table_and_means(make_results):
    ce, auc = _runs(make_results)
    agg = aggregate_results([*ce, *auc], ["CE"] * 3 + ["AUC"] * 2)
    lines = format_aggregate_per_class(agg).splitlines()
    assert lines[0] == "| class | group | CE IoU | AUC IoU |"
    rider = [c.strip() for c in lines[5].strip("|").split(" | ")]
    present = [ce[0]["per_class"][3]["iou"], ce[2]["per_class"][3]["iou"]]
    assert rider[:3] == [
        "rider",
        "tail",
        f"{np.mean(present):.2f} ± {np.std(present, ddof=1):.2f} (2)",
    ]
    means = [aggregate_means(m) for m in agg["methods"]]
    assert means[1]["per_class"][0]["iou"] == pytest.approx(
        np.mean([r["per_class"][0]["iou"] for r in auc])
    )
    delta = np.mean([r["mIoU"] for r in auc]) - np.mean([r["mIoU"] for r in ce])
    row = next(line for line in compare_results(*means).splitlines() if line.startswith("mIoU "))
    assert row.split()[-1] == f"{delta:+.2f}"
    with pytest.raises(InputError, match="'iou' or 'acc'"):
        format_aggregate_per_class(agg, field="dice")


def test_extra_groups_and_auc_columns(make_results):
    res = make_results(0, groups={"head": [0], "rare": [3, 4]})
    res["AUC"] = 91.0
    agg = aggregate_results([res], ["x"])
    assert agg["metrics"][-1] == "mIoU_rare"
    header = format_aggregate_table(agg).splitlines()[0]
    assert header.endswith("| aAcc | AUC | mIoU_rare |")


def test_mismatching_classes_name_the_file(make_results):
    base = make_results(0)
    other = make_results(1, names=["road", "car", "bike", "rider", "pole"])
    with pytest.raises(InputError, match=r"b\.json has 5 classes \('pole' at id 4\)") as err:
        aggregate_results([base, base, other], ["A", "A", "B"], ["a.json", "a2.json", "b.json"])
    assert "\n" not in str(err.value)
    fewer = make_results(1, names=["road", "car", "bike", "rider"], groups=None)
    with pytest.raises(InputError, match=r"c\.json has 4 classes \(none at id 4\)"):
        aggregate_results([base, fewer], ["A", "B"], ["a.json", "c.json"])
    ids_a = dict(base, provenance={"class_ids": [0, 1, 2, 3, 4]})
    ids_b = dict(base, provenance={"class_ids": [0, 1, 2, 3, 7]})
    with pytest.raises(InputError, match=r"d\.json has provenance class_ids"):
        aggregate_results([ids_a, ids_b], ["A", "B"], ["a.json", "d.json"])


def test_bad_arguments(make_results):
    res = make_results(0)
    with pytest.raises(InputError, match="no results"):
        aggregate_results([], [])
    with pytest.raises(InputError, match="got 1 labels and 2 sources for 2 results"):
        aggregate_results([res, res], ["A"])
