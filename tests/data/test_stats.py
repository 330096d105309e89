"""Class statistics: counting against brute force, the split rule, JSON, plot, command line."""

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
from aucseg.data import build_dataset
from aucseg.data.stats import (
    TAIL_FRACTIONS,
    compute_class_stats,
    default_rule,
    load_class_groups,
    load_class_stats,
    load_image_class_pixels,
    plot_class_stats,
    sample_names,
    save_class_stats,
    split_groups,
)
from aucseg.data.synthetic import make_synthetic
from aucseg.errors import InputError

SRC = Path(__file__).resolve().parents[2] / "src"


def _write_labels(folder: Path, n: int, high: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        label = rng.integers(0, high, (9, 13)).astype(np.uint8)
        label[0, :4] = 255
        path = folder / f"{i:03d}.png"
        cv2.imwrite(str(path), label)
        paths.append(path)
    return paths


@pytest.mark.parametrize("workers", [1, 2])
def test_counts_match_brute_force(tmp_path, workers):
    paths = _write_labels(tmp_path, 12, high=6)
    stats = compute_class_stats(paths, 5, workers=workers, progress=False)
    labels = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in paths]
    for c in range(5):
        assert stats.pixel_counts[c] == sum(int((lab == c).sum()) for lab in labels)
        assert stats.image_counts[c] == sum(bool((lab == c).any()) for lab in labels)
    # 255 and the out-of-range value 5 are ignored
    assert stats.ignored_pixels == sum(int(((lab == 255) | (lab == 5)).sum()) for lab in labels)
    assert stats.num_images == 12
    # per image, in input order: pixels of each class present
    for lab, counts in zip(labels, stats.image_class_pixels, strict=True):
        assert counts == {c: int((lab == c).sum()) for c in range(5) if (lab == c).any()}
    assert stats.image_names == [f"{i:03d}" for i in range(12)]


def test_reduce_zero_label_shifts_ids(tmp_path):
    paths = _write_labels(tmp_path, 3, high=4)
    stats = compute_class_stats(paths, 3, reduce_zero_label=True, workers=1, progress=False)
    labels = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in paths]
    for c in range(3):
        assert stats.pixel_counts[c] == sum(int((lab == c + 1).sum()) for lab in labels)
    assert stats.ignored_pixels == sum(int(((lab == 0) | (lab == 255)).sum()) for lab in labels)
    assert stats.image_class_pixels[0] == {c - 1: int((labels[0] == c).sum()) for c in (1, 2, 3)}


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.png"):
        compute_class_stats([tmp_path / "nope.png"], 3, workers=1, progress=False)
    with pytest.raises(InputError, match="empty"):
        compute_class_stats([], 3)


def test_sample_names_are_paths_below_the_common_folder(tmp_path):
    paths = [tmp_path / "a" / "x_gt.png", tmp_path / "b" / "c" / "y.png"]
    assert sample_names(paths) == ["a/x_gt", "b/c/y"]
    assert sample_names([tmp_path / "a" / "x.png"]) == ["x"]


def test_split_rule_by_hand():
    counts = [50, 1, 30, 5, 10, 2, 2]  # ranking: 0, 2, 4, 3, 5, 6, 1
    groups = split_groups(counts, head_mass=0.5, tail_fraction=3 / 7)
    assert groups == {"head": [0], "middle": [2, 4, 3], "tail": [5, 6, 1]}
    groups = split_groups(counts, head_mass=0.8, tail_fraction=0.0)
    assert groups["head"] == [0, 2] and groups["tail"] == []


@pytest.mark.parametrize(("dataset", "num", "tail"), [("ade20k", 150, 124), ("cityscapes", 19, 7)])
def test_default_rule_reproduces_official_tail_sizes(dataset, num, tail):
    counts = np.round(1e9 * np.arange(1, num + 1, dtype=float) ** -1.3).astype(np.int64)
    groups = split_groups(counts, **default_rule(dataset))
    assert groups["tail"] == list(range(num - tail, num))  # the least frequent ones
    assert sorted(c for g in groups.values() for c in g) == list(range(num))
    assert len(groups["head"]) >= 1 and len(groups["middle"]) >= 1
    assert TAIL_FRACTIONS[dataset] * num == pytest.approx(tail)


def test_split_rejects_bad_parameters():
    with pytest.raises(ValueError, match="head_mass"):
        split_groups([1, 2], head_mass=0)
    with pytest.raises(ValueError, match="tail_fraction"):
        split_groups([1, 2], tail_fraction=1.0)
    with pytest.raises(ValueError, match="pixel_counts"):
        split_groups([])


def test_json_round_trip_and_plot(tmp_path):
    paths = _write_labels(tmp_path / "l", 4, high=4)
    stats = compute_class_stats(paths, 4, workers=1, progress=False)
    groups = split_groups(stats.pixel_counts, 0.3, 0.5)
    out = save_class_stats(tmp_path / "s.json", stats, groups, list("abcd"), rule={"x": 1})
    data = load_class_stats(out)
    assert data["pixel_counts"] == stats.pixel_counts.tolist()
    assert data["classes"] == list("abcd") and data["rule"]["x"] == 1
    assert load_class_groups(out) == groups
    png = plot_class_stats(tmp_path / "p.png", stats.pixel_counts, groups, list("abcd"))
    assert cv2.imread(str(png)) is not None
    with pytest.raises(ValueError, match="class names"):
        save_class_stats(tmp_path / "t.json", stats, groups, ["a"])
    with pytest.raises(FileNotFoundError):
        load_class_groups(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match=r"bad\.json is not a JSON"):
        load_class_stats(tmp_path / "bad.json")


def test_images_are_written_one_line_each_and_old_files_still_load(tmp_path):
    paths = _write_labels(tmp_path / "l", 3, high=4)
    stats = compute_class_stats(paths, 4, workers=1, progress=False)
    groups = split_groups(stats.pixel_counts, 0.3, 0.5)
    out = save_class_stats(tmp_path / "s.json", stats, groups, list("abcd"))
    data = json.loads(out.read_text())
    assert data["images"][1] == {
        "name": "001",
        "classes": [[c, n] for c, n in stats.image_class_pixels[1].items()],
    }
    lines = out.read_text().splitlines()
    assert sum(line.strip().startswith('{"name": "00') for line in lines) == 3
    # a file of an older 'aucseg stats' (no "images"): groups and counts load as before
    del data["images"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert load_class_groups(tmp_path / "old.json") == groups
    assert load_class_stats(tmp_path / "old.json")["pixel_counts"] == stats.pixel_counts.tolist()


def test_image_class_pixels_follow_the_dataset(tmp_path):
    root = make_synthetic(tmp_path / "syn", num_train=5, num_val=0, height=32, width=48)
    out = tmp_path / "stats.json"
    args = ["stats", "--dataset", "cityscapes", "--root", str(root), "--out", str(out)]
    assert main([*args, "--no-progress", "--workers", "1"]) == 0
    dataset = build_dataset("cityscapes", root, "train")
    per_image = load_image_class_pixels(out, dataset)
    for i, counts in enumerate(per_image):
        label = dataset.load(i)["label"]
        values, numbers = np.unique(label[label != 255], return_counts=True)
        assert counts == dict(zip(values.tolist(), numbers.tolist(), strict=True))
    # stale statistics: a sample was removed after 'aucseg stats' ran
    image, label = dataset.samples[2]
    image.unlink()
    label.unlink()
    fewer = build_dataset("cityscapes", root, "train")
    with pytest.raises(InputError, match=r"5 label files but the dataset has 4.*re-run 'aucseg"):
        load_image_class_pixels(out, fewer)
    data = json.loads(out.read_text())
    data["images"][0]["name"] = "synthtown/other"
    del data["images"][2]
    (tmp_path / "renamed.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"image 0 is 'synthtown/other' but .*re-run 'aucseg"):
        load_image_class_pixels(tmp_path / "renamed.json", fewer)
    del data["images"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"no per-image class pixels.*re-run 'aucseg stats'"):
        load_image_class_pixels(tmp_path / "old.json", fewer)


def test_command_on_generated_scenes(tmp_path, capsys):
    root = make_synthetic(tmp_path / "syn", num_train=30, num_val=0, height=32, width=48)
    out, png = tmp_path / "stats.json", tmp_path / "stats.png"
    args = ["stats", "--label-dir", str(root / "gtFine" / "train"), "--num-classes", "19"]
    args += ["--out", str(out), "--plot", str(png), "--tail-fraction", str(7 / 19)]
    assert main([*args, "--no-progress", "--workers", "1"]) == 0
    data = json.loads(out.read_text())
    assert data["num_images"] == 30 and len(data["groups"]["tail"]) == 7
    counts = np.array(data["pixel_counts"])
    assert counts[data["groups"]["tail"]].max() <= counts[data["groups"]["head"]].min()
    assert png.is_file() and "tail (7)" in capsys.readouterr().out


def test_command_subprocess_with_progress(tmp_path):
    _write_labels(tmp_path / "labels", 5, high=3)
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "aucseg", "stats", "--label-dir", str(tmp_path / "labels")]
    cmd += ["--num-classes", "3", "--out", str(tmp_path / "s.json")]
    done = subprocess.run(
        cmd, env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert load_class_groups(tmp_path / "s.json")["head"]


def test_command_through_the_dataset_registry(tmp_path):
    root = make_synthetic(tmp_path / "syn", num_train=6, num_val=0, height=32, width=48)
    out = tmp_path / "stats.json"
    args = ["stats", "--dataset", "cityscapes", "--root", str(root), "--out", str(out)]
    assert main([*args, "--no-progress", "--workers", "1"]) == 0
    assert len(load_class_groups(out)["tail"]) == 7


def test_command_needs_one_label_source(tmp_path, capsys):
    assert main(["stats", "--out", str(tmp_path / "s.json")]) == 2
    assert "either" in capsys.readouterr().err
