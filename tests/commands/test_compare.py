import json

import numpy as np
import pytest
import torch
from PIL import Image

from aucseg.cli import build_command_parser, main
from aucseg.errors import InputError
from aucseg.metrics import ConfusionMatrix, load_metrics_json, summarize, write_metrics_json

NAMES = ["sky", "tree", "person", "kite"]
GROUPS = {"head": [0], "middle": [1], "tail": [2, 3]}
KEYS = ["mIoU", "mIoU_head", "mIoU_middle", "mIoU_tail", "mAcc", "aAcc"]


def _results(seed: int, names=NAMES, provenance=None) -> dict:
    """``summarize`` of a confusion matrix of seeded random labels, half predicted right."""
    gen = torch.Generator().manual_seed(seed)
    target = torch.randint(len(names), (300,), generator=gen)
    noise = torch.randint(len(names), (300,), generator=gen)
    pred = torch.where(torch.rand(300, generator=gen) < 0.5, target, noise)
    cm = ConfusionMatrix(len(names))
    cm.update(pred, target)
    res = summarize(cm, names, GROUPS)
    if provenance is not None:
        res["provenance"] = provenance
    return res


def _seed_files(tmp_path, method: str, seeds, **kwargs) -> list[dict]:
    runs = [_results(s, **kwargs) for s in seeds]
    for s, res in zip(seeds, runs, strict=True):
        write_metrics_json(tmp_path / "runs" / f"{method}_seed{s}" / "metrics.json", res)
    return runs


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def _is_png(path) -> bool:
    with Image.open(path) as img:
        img.verify()
        return img.format == "PNG"


def test_globbed_labels_aggregate_seeds(tmp_path, capsys):
    ce = _seed_files(tmp_path, "ce", [0, 1, 2])
    auc = _seed_files(tmp_path, "auc", [3, 4, 5])
    out_json, png = tmp_path / "agg.json", tmp_path / "plots" / "agg.png"
    argv = [f"CE={tmp_path}/runs/ce_seed*/metrics.json", f"AUCSeg={tmp_path}/runs/auc_*/*.json"]
    code = main(["compare", *argv, "--out-json", str(out_json), "--plot", str(png)])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert _cells(lines[0])[:3] == ["method", "runs", "mIoU"]
    for line, label, runs in ((lines[2], "CE", ce), (lines[3], "AUCSeg", auc)):
        cells = _cells(line)
        assert cells[:2] == [label, "3"]
        for cell, key in zip(cells[2:], KEYS, strict=True):
            values = [r[key] for r in runs]
            assert cell == f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f} (3)"
    delta = np.mean([r["mIoU"] for r in auc]) - np.mean([r["mIoU"] for r in ce])
    mIoU_row = next(line for line in lines if line.startswith("mIoU "))
    assert mIoU_row.split()[-1] == f"{delta:+.2f}"
    agg = json.loads(out_json.read_text())
    assert agg["methods"][0]["files"] == sorted(agg["methods"][0]["files"])
    assert len(agg["methods"][1]["files"]) == 3
    tail = [r["per_class"][3]["iou"] for r in auc]
    assert agg["methods"][1]["per_class"][3]["iou"]["mean"] == pytest.approx(np.mean(tail))
    assert agg["methods"][1]["per_class"][3]["iou"]["std"] == pytest.approx(np.std(tail, ddof=1))
    assert _is_png(png) and f"wrote {png}" in out


def test_two_files_with_labels_as_in_readme(tmp_path, capsys):
    a = _results(0)
    b = dict(a, mIoU=a["mIoU"] + 2.0)
    write_metrics_json(tmp_path / "ce.json", a)
    write_metrics_json(tmp_path / "auc.json", b)
    png = tmp_path / "cmp.png"
    argv = [str(tmp_path / "ce.json"), str(tmp_path / "auc.json")]
    code = main(["compare", *argv, "--labels", "CE", "AUCSeg", "--out-png", str(png)])
    out = capsys.readouterr().out
    assert code == 0 and _is_png(png)
    assert _cells(out.splitlines()[2])[:3] == ["CE", "1", f"{a['mIoU']:.2f} ± - (1)"]
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "CE", "AUCSeg", "delta"]
    assert next(line for line in out.splitlines() if line.startswith("mIoU ")).endswith("+2.00")


def test_default_labels(tmp_path, capsys):
    # no provenance, same stem in different folders: the folder names
    _seed_files(tmp_path, "ce", [0])
    _seed_files(tmp_path, "auc", [1])
    files = [
        str(tmp_path / "runs" / f"{m}_seed{s}" / "metrics.json") for m, s in (("ce", 0), ("auc", 1))
    ]
    assert main(["compare", *files]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [_cells(r)[0] for r in rows[2:4]] == ["ce_seed0", "auc_seed1"]
    # provenance: label, else the config name; those runs aggregate, the old file uses its stem
    prov = {"config": "configs/ade_aucseg.yaml", "seed": 0}
    for s in (0, 1):
        write_metrics_json(tmp_path / f"p{s}.json", _results(s, provenance=dict(prov, seed=s)))
    write_metrics_json(tmp_path / "lab.json", _results(2, provenance={"label": "mine"}))
    write_metrics_json(tmp_path / "old.json", _results(3))
    names = ["p0", "p1", "lab", "old"]
    assert main(["compare", *(str(tmp_path / f"{n}.json") for n in names), "--per-class"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [_cells(r)[:2] for r in out[2:5]] == [["ade_aucseg", "2"], ["mine", "1"], ["old", "1"]]
    per_class = next(i for i, line in enumerate(out) if line.startswith("| class |"))
    assert _cells(out[per_class])[2:] == ["ade_aucseg IoU", "mine IoU", "old IoU"]
    assert [_cells(r)[0] for r in out[per_class + 2 : per_class + 6]] == NAMES


def _run_compare(argv: list[str]) -> int:
    parser, module = build_command_parser("compare")
    return module.run(parser.parse_args(argv))


def test_compare_raises_input_errors_itself(tmp_path):
    write_metrics_json(tmp_path / "a.json", _results(0))
    write_metrics_json(tmp_path / "b.json", _results(1, names=["sky", "tree", "person", "bird"]))
    with pytest.raises(InputError, match=r"b\.json has 4 classes \('bird' at id 3\)"):
        _run_compare([str(tmp_path / "a.json"), str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    with pytest.raises(InputError, match="got 1 labels for 2 files"):
        _run_compare([str(tmp_path / "a.json"), str(tmp_path / "a.json"), "--labels", "x"])
    with pytest.raises(InputError, match="either --labels or LABEL=PATH"):
        _run_compare([f"A={tmp_path / 'a.json'}", "--labels", "x"])
    with pytest.raises(InputError, match="matched no file"):
        _run_compare([f"A={tmp_path}/nothing_*.json"])
    with pytest.raises(InputError, match="is not LABEL=PATH"):
        _run_compare([f"={tmp_path / 'a.json'}"])


def test_file_named_with_equals_sign_is_a_path(tmp_path, capsys):
    path = write_metrics_json(tmp_path / "lr=0.1.json", _results(0))
    assert main(["compare", str(path)]) == 0
    assert _cells(capsys.readouterr().out.splitlines()[2])[0] == "lr=0.1"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "not found"),
        ("{oops", "is not valid JSON"),
        ('{"mIoU": 1}', "lacks the keys"),
    ],
)
def test_bad_file_exit_code_2_and_one_line(tmp_path, capsys, content, match):
    good = write_metrics_json(tmp_path / "good.json", _results(0))
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    code = main(["compare", str(good), str(bad)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aucseg compare: error: ")
    assert str(bad) in lines[0] and match in lines[0]


def test_out_json_is_a_loadable_aggregate(tmp_path, capsys):
    runs = _seed_files(tmp_path, "ce", [0, 1])
    out_json = tmp_path / "agg.json"
    assert main(["compare", f"CE={tmp_path}/runs/*/metrics.json", "--out-json", str(out_json)]) == 0
    capsys.readouterr()
    agg = json.loads(out_json.read_text())
    assert agg["kind"] == "aucseg-aggregate" and agg["class_names"] == NAMES
    assert "ddof=1" in agg["std"]
    stat = agg["methods"][0]["metrics"]["aAcc"]
    values = [r["aAcc"] for r in runs]
    assert stat == {
        "mean": pytest.approx(np.mean(values)),
        "std": pytest.approx(np.std(values, ddof=1)),
        "n": 2,
    }
    # the per-run files themselves are untouched and still load
    assert load_metrics_json(tmp_path / "runs" / "ce_seed0" / "metrics.json") == runs[0]
