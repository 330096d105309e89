import json

import pytest

from aucseg.errors import InputError
from aucseg.metrics import load_metrics_json, write_metrics_json

PROVENANCE = {
    "checkpoint": "runs/ce/checkpoints/last.pth",
    "iteration": 160000,
    "config": "configs/ade20k_ce_segnext_t.yaml",
    "split": "val",
    "mode": "slide",
    "tta": False,
    "aucseg_version": "0.2.0",
    "class_ids": [0, 1, 2, 3, 4],
    "seed": 1,
    "extra_note": "kept as is",
}


def test_round_trip_with_provenance(tmp_path, make_results):
    res = make_results(0, absent=[3])
    res["AUC"] = float("nan")
    res["num_images"] = 3
    res["provenance"] = dict(PROVENANCE)
    path = write_metrics_json(tmp_path / "sub" / "m.json", res)
    assert "NaN" not in path.read_text()
    loaded = load_metrics_json(path)
    assert loaded == dict(res, AUC=None)
    assert loaded["provenance"]["extra_note"] == "kept as is"
    assert loaded["per_class"][3]["iou"] is None


def test_files_without_provenance_still_load(tmp_path, make_results):
    res = make_results(1)
    assert "provenance" not in res
    loaded = load_metrics_json(write_metrics_json(tmp_path / "old.json", res))
    assert loaded == res
    # provenance entries may be null, and the object itself may be null
    res["provenance"] = {"checkpoint": None, "iteration": None}
    assert load_metrics_json(write_metrics_json(tmp_path / "n.json", res))["provenance"]
    res["provenance"] = None
    assert load_metrics_json(write_metrics_json(tmp_path / "n.json", res))["provenance"] is None


def _write_raw(tmp_path, obj) -> str:
    path = tmp_path / "bad.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def _broken(res: dict, case: str) -> dict:
    """``res`` with one structural defect."""
    res = json.loads(json.dumps(res))
    if case == "missing keys":
        del res["mAcc"]
    elif case == "string metric":
        res["mIoU"] = "42"
    elif case == "empty per_class":
        res["per_class"] = []
    elif case == "row without name":
        del res["per_class"][2]["name"]
    elif case == "string iou":
        res["per_class"][1]["iou"] = "high"
    elif case == "provenance list":
        res["provenance"] = ["ckpt"]
    elif case == "iteration string":
        res["provenance"] = {"iteration": "10"}
    elif case == "tta int":
        res["provenance"] = {"tta": 1}
    elif case == "iteration bool":
        res["provenance"] = {"iteration": True}
    elif case == "class_ids length":
        res["provenance"] = {"class_ids": [0, 1]}
    return res


MATCHES = {
    "missing keys": r"lacks the keys \['mAcc'\]",
    "string metric": r"'mIoU' is '42'",
    "empty per_class": "non-empty list",
    "row without name": "per_class row 2",
    "string iou": r"\('car'\) has iou='high'",
    "provenance list": "'provenance' is",
    "iteration string": "provenance 'iteration' is '10', expected int",
    "tta int": "provenance 'tta' is 1, expected bool",
    "iteration bool": "provenance 'iteration' is True",
    "class_ids length": "expected 5 integer ids",
}


@pytest.mark.parametrize("case", list(MATCHES))
def test_wrong_structure_is_one_input_error_naming_the_file(tmp_path, make_results, case):
    path = _write_raw(tmp_path, _broken(make_results(2), case))
    with pytest.raises(InputError, match=MATCHES[case]) as err:
        load_metrics_json(path)
    assert path in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("content", "match"),
    [("{not json", "is not valid JSON"), ("[1, 2]", "holds a list, expected an object")],
)
def test_not_a_results_object(tmp_path, content, match):
    path = _write_raw(tmp_path, content)
    with pytest.raises(InputError, match=match) as err:
        load_metrics_json(path)
    assert path in str(err.value) and "\n" not in str(err.value)


def test_missing_or_unreadable_file(tmp_path):
    with pytest.raises(InputError, match=r"missing\.json' not found"):
        load_metrics_json(tmp_path / "missing.json")
    (tmp_path / "latin1.json").write_bytes(b'{"name": "\xe9"}')
    with pytest.raises(InputError, match=r"latin1\.json' cannot be read"):
        load_metrics_json(tmp_path / "latin1.json")
    assert issubclass(InputError, ValueError)
