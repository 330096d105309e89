"""Generated long-tail scenes: layout, label ranges, long tail, determinism, command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from aucseg.cli import main
from aucseg.data.synthetic import make_synthetic

SRC = Path(__file__).resolve().parents[2] / "src"


def _read(path: Path) -> np.ndarray:
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert array is not None, path
    return array


def test_cityscapes_layout_and_long_tail(tmp_path):
    root = make_synthetic(tmp_path / "city", num_train=40, num_val=6, height=64, width=96)
    images = sorted((root / "leftImg8bit" / "train").glob("*/*_leftImg8bit.png"))
    labels = sorted((root / "gtFine" / "train").glob("*/*_gtFine_labelTrainIds.png"))
    assert len(images) == len(labels) == 40
    assert len(list((root / "gtFine" / "val").glob("*/*_gtFine_labelTrainIds.png"))) == 6
    for img_path, lab_path in zip(images, labels, strict=True):
        stem = img_path.name.removesuffix("_leftImg8bit.png")
        assert lab_path.name == f"{stem}_gtFine_labelTrainIds.png"
        assert lab_path.parent.name == img_path.parent.name
    first = _read(images[0])
    assert first.shape == (64, 96, 3) and first.dtype == np.uint8
    stack = np.stack([_read(p) for p in labels])
    assert stack.dtype == np.uint8 and stack.shape == (40, 64, 96)
    assert set(np.unique(stack)) <= set(range(19)) | {255}
    counts = np.bincount(stack[stack != 255], minlength=19)
    # Long tail: the background dwarfs the rarest classes, which still occur; the 7 rare classes
    # (the default tail) each hold fewer pixels than any other class, under a tenth together.
    assert counts[0] == counts.max() and counts[0] > 10 * counts[-7:].max()
    assert counts[-7:].max() < counts[:-7].min()
    assert counts[-7:].sum() < 0.1 * counts.sum()
    assert (counts > 0).sum() >= 15


def test_ade20k_layout_uses_zero_as_other(tmp_path):
    root = make_synthetic(
        tmp_path / "ade", layout="ade20k", num_train=5, num_val=2, height=48, width=48
    )
    images = sorted((root / "images" / "training").glob("ADE_train_*.jpg"))
    labels = sorted((root / "annotations" / "training").glob("ADE_train_*.png"))
    assert [p.stem for p in images] == [p.stem for p in labels]
    assert len(images) == 5
    assert len(list((root / "annotations" / "validation").glob("ADE_val_*.png"))) == 2
    values = np.unique(np.stack([_read(p) for p in labels]))
    assert values.min() >= 0 and values.max() <= 150 and 1 in values


def test_same_seed_same_files_and_different_seed_differs(tmp_path):
    kw = {"num_train": 3, "num_val": 0, "height": 32, "width": 32}
    a = make_synthetic(tmp_path / "a", seed=1, **kw)
    b = make_synthetic(tmp_path / "b", seed=1, **kw)
    c = make_synthetic(tmp_path / "c", seed=2, **kw)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*.png"))
    assert all(np.array_equal(_read(a / f), _read(b / f)) for f in files)
    assert not all(np.array_equal(_read(a / f), _read(c / f)) for f in files)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layout": "voc"}, "layout"),
        ({"num_classes": 1}, "num_classes"),
        ({"height": 4}, "height"),
        ({"zipf_a": 0.0}, "zipf_a"),
        ({"rare_classes": 18}, "rare_classes"),
        ({"rare_factor": 0.0}, "rare_factor"),
    ],
)
def test_invalid_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic(tmp_path, **kwargs)


def test_rare_classes_step_down(tmp_path):
    kw = {"num_train": 30, "num_val": 0, "height": 64, "width": 96, "num_classes": 10}
    flat = make_synthetic(tmp_path / "flat", rare_classes=0, **kw)
    step = make_synthetic(tmp_path / "step", rare_classes=3, rare_factor=0.1, **kw)

    def counts(root: Path) -> np.ndarray:
        stack = np.stack([_read(p) for p in sorted((root / "gtFine").rglob("*.png"))])
        return np.bincount(stack[stack != 255], minlength=10)

    a, b = counts(flat), counts(step)
    assert b[-3:].sum() < 0.3 * a[-3:].sum()  # the rare classes drop to about a tenth
    assert json.loads((step / "synthetic.json").read_text())["rare_classes"] == 3


def test_command_line_in_process(tmp_path, capsys):
    args = ["make-synthetic", "--root", str(tmp_path / "s"), "--num-train", "2", "--num-val", "1"]
    assert main([*args, "--height", "32", "--width", "48"]) == 0
    assert "wrote 2 train + 1 val" in capsys.readouterr().out
    assert len(list((tmp_path / "s" / "leftImg8bit").rglob("*.png"))) == 3


def test_command_line_subprocess(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "aucseg", "make-synthetic", "--root", str(tmp_path / "s")]
    cmd += ["--layout", "ade20k", "--num-train", "1", "--num-val", "1", "--height", "32"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s" / "annotations" / "training" / "ADE_train_00000001.png").is_file()
