import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from aucseg.cli import main
from aucseg.data import CityscapesDataset, COCOStuffDataset, read_label, write_label
from aucseg.data.convert import (
    COCO_STUFF_ID_TO_TRAINID,
    cityscapes_labelids_to_trainids,
    coco_stuff_to_trainids,
    convert_cityscapes,
    convert_coco_stuff164k,
)

SRC = Path(__file__).resolve().parents[2] / "src"


def test_cityscapes_table():
    ids = np.arange(256).reshape(16, 16)
    out = cityscapes_labelids_to_trainids(ids).ravel()
    assert out.dtype == np.uint8
    expected = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}  # fmt: skip
    for src in range(256):
        assert out[src] == expected.get(src, 255), src
    assert sorted(set(out.tolist()) - {255}) == list(range(19))


def test_coco_stuff_table():
    ids = np.array([[0, 10, 11, 12, 24, 25, 26, 91, 181, 182, 255]])
    out = coco_stuff_to_trainids(ids)
    np.testing.assert_array_equal(out, [[0, 10, 255, 11, 23, 255, 24, 80, 170, 255, 255]])
    assert len(COCO_STUFF_ID_TO_TRAINID) == 171
    assert sorted(COCO_STUFF_ID_TO_TRAINID.values()) == list(range(171))
    with pytest.raises(ValueError, match="300"):
        coco_stuff_to_trainids(np.array([[1, 300]]))


def _city_raw(root: Path) -> Path:
    for city, stem in (("aachen", "aachen_000000_000019"), ("bonn", "bonn_000001_000019")):
        base = root / "gtFine" / "train" / city
        write_label(base / f"{stem}_gtFine_labelIds.png", np.array([[7, 26, 33], [0, 29, 24]]))
        img = root / "leftImg8bit" / "train" / city / f"{stem}_leftImg8bit.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(img), np.zeros((2, 3, 3), np.uint8))
    return root


def test_convert_cityscapes_then_load(tmp_path):
    root = _city_raw(tmp_path / "cityscapes")
    with pytest.raises(FileNotFoundError, match="labelTrainIds"):
        CityscapesDataset(root, "train")
    assert convert_cityscapes(root) == 2
    out = root / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png"
    np.testing.assert_array_equal(read_label(out), [[0, 13, 18], [255, 255, 11]])
    ds = CityscapesDataset(root, "train")
    assert len(ds) == 2 and ds[1]["label"][0, 1] == 13
    assert convert_cityscapes(root) == 0  # existing outputs are skipped
    assert convert_cityscapes(root, overwrite=True, workers=2) == 2


def test_convert_cityscapes_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="gtFine"):
        convert_cityscapes(tmp_path)
    (tmp_path / "gtFine").mkdir()
    with pytest.raises(FileNotFoundError, match=r"_gtFine_labelIds\.png"):
        convert_cityscapes(tmp_path)
    with pytest.raises(ValueError, match="'labelIds' or 'polygons'"):
        convert_cityscapes(tmp_path, source="colors")
    if importlib.util.find_spec("cityscapesscripts") is None:
        with pytest.raises(ImportError, match="pip install cityscapesscripts"):
            convert_cityscapes(tmp_path, source="polygons")


def _coco_raw(root: Path) -> Path:
    for split in ("train2017", "val2017"):
        stem = "000000000139" if split == "val2017" else "000000000009"
        write_label(root / "annotations" / split / f"{stem}.png", np.array([[0, 12, 181, 255]]))
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / split / f"{stem}.jpg"), np.zeros((1, 4, 3), np.uint8))
    return root


def test_convert_coco_then_load(tmp_path):
    root = _coco_raw(tmp_path / "coco")
    assert convert_coco_stuff164k(root) == 2
    out = root / "annotations/val2017/000000000139_labelTrainIds.png"
    np.testing.assert_array_equal(read_label(out), [[0, 11, 170, 255]])
    assert len(COCOStuffDataset(root, "val2017")) == 1
    assert convert_coco_stuff164k(root) == 0  # converted files are neither inputs nor redone
    other = tmp_path / "elsewhere"
    assert convert_coco_stuff164k(root, out_dir=other) == 2
    assert (other / "train2017" / "000000000009_labelTrainIds.png").is_file()
    with pytest.raises(FileNotFoundError, match="train2017"):
        convert_coco_stuff164k(tmp_path / "empty")
    done = tmp_path / "done/annotations/val2017/1_labelTrainIds.png"
    write_label(done, np.zeros((1, 1), np.uint8))  # write_label creates the folders
    with pytest.raises(FileNotFoundError, match="no raw COCO-Stuff"):
        convert_coco_stuff164k(tmp_path / "done")  # converted outputs are not raw inputs


def test_cli_convert_labels(tmp_path, capsys):
    root = _city_raw(tmp_path / "cs")
    assert main(["convert-labels", "cityscapes", str(root)]) == 0
    assert "wrote 2" in capsys.readouterr().out
    coco = _coco_raw(tmp_path / "coco")
    assert main(["convert-labels", "coco_stuff164k", str(coco), "--workers", "1"]) == 0
    assert len(COCOStuffDataset(coco, "train2017")) == 1
    assert main(["convert-labels", "coco_stuff164k", str(coco), "--source", "polygons"]) == 2
    assert "Cityscapes only" in capsys.readouterr().err
    assert main(["convert-labels", "cityscapes", str(tmp_path / "missing")]) == 2
    assert "gtFine" in capsys.readouterr().err


def test_cli_convert_labels_subprocess(tmp_path):
    root = _city_raw(tmp_path / "cs")
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    res = subprocess.run(
        [sys.executable, "-m", "aucseg", "convert-labels", "cityscapes", str(root)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert len(list(root.rglob("*_labelTrainIds.png"))) == 2
