"""Bring your own: a 7-class dataset in a folder layout of its own with statistics from
``aucseg stats --config``, a model given by import path, and a Hugging Face model saved with
``save_pretrained``, each through train, resume, test and predict."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from aucseg.cli import main

from .conftest import (
    EXTERNAL,
    checkpoint,
    overrides,
    run_cli,
    run_subprocess,
    small_config,
    write_config,
)

NAMES = ["sky", "road", "tree", "car", "person", "bicycle", "sign"]


def _relayout(ade: Path, root: Path) -> Path:
    """``images/training/*.jpg`` + ``annotations/training/*.png`` (ADE20K style) as
    ``imgs/{train,val}/*.png`` + ``masks/{train,val}/*.png``."""
    for old, new in (("training", "train"), ("validation", "val")):
        (root / "imgs" / new).mkdir(parents=True)
        shutil.copytree(ade / "annotations" / old, root / "masks" / new)
        for jpg in (ade / "images" / old).glob("*.jpg"):
            Image.open(jpg).save(root / "imgs" / new / f"{jpg.stem}.png")
    return root


def _run(*argv) -> str:
    """``aucseg ARGV`` in this process (exit code 0 asserted); what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([str(a) for a in argv]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def custom(tmp_path_factory, external_on_path):
    """Stats, a run, its evaluation and predictions on a 7-class folder dataset."""
    tmp = tmp_path_factory.mktemp("custom")
    ade = tmp / "ade"
    _run("make-synthetic", "--root", ade, "--layout", "ade20k", "--num-classes", 7,
         "--num-train", 8, "--num-val", 4, "--height", 64, "--width", 128)  # fmt: skip
    root = _relayout(ade, tmp / "scenes")
    data = {
        "dataset": "folder", "root": str(root), "classes": NAMES, "img_dir": "imgs/{split}",
        "ann_dir": "masks/{split}", "img_suffix": ".png", "seg_map_suffix": ".png",
        "reduce_zero_label": True,
    }  # fmt: skip
    cfg = small_config(
        root,
        model={"name": EXTERNAL, "num_classes": 7},
        data=data,
        memory_bank={"enabled": True, "placement": "batch", "tail_classes": None},
        evaluation={"interval": 2, "best_metric": "mIoU_tail"},
    )
    config = write_config(tmp / "scenes.yaml", cfg)
    stats = tmp / "class_stats.json"
    _run("stats", "--config", config, "--out", stats, "--workers", "1", "--no-progress")
    work = tmp / "run"
    _run("train", config, "--work-dir", work, "--set", f"data.class_groups={stats}")
    ckpt = work / "checkpoints" / "last.pth"
    table = _run("test", "-", ckpt, "--out", tmp / "metrics.json")
    _run("predict", ckpt, root / "imgs" / "val", "--out", tmp / "pred")
    return {"root": root, "stats": stats, "work": work, "table": table, "tmp": tmp}


def test_custom_folder_dataset_with_seven_classes_trains(custom):
    resolved = yaml.safe_load((custom["work"] / "config.yaml").read_text())
    assert resolved["data"]["dataset"] == "folder" and resolved["data"]["classes"] == NAMES
    assert resolved["data"]["img_suffix"] == ".png" and resolved["data"]["reduce_zero_label"]
    state = checkpoint(custom["work"] / "checkpoints" / "last.pth")
    assert state["iteration"] == 4 and state["best_metric"]["name"] == "mIoU_tail"


def test_stats_from_the_config_drive_the_run(custom):
    stats = json.loads(custom["stats"].read_text())
    assert stats["num_images"] == 8 and len(stats["pixel_counts"]) == 7
    resolved = yaml.safe_load((custom["work"] / "config.yaml").read_text())
    assert resolved["data"]["class_groups"] == str(custom["stats"].resolve())
    bank = checkpoint(custom["work"] / "checkpoints" / "last.pth")["memory_bank"]
    assert sorted(bank["memory_classes"]) == sorted(stats["groups"]["tail"])  # the bank's tail
    results = json.loads((custom["tmp"] / "metrics.json").read_text())
    for group in ("head", "middle", "tail"):
        tagged = [i for i, c in enumerate(results["per_class"]) if c["group"] == group]
        assert sorted(tagged) == sorted(stats["groups"][group]), group
    assert results["mIoU_tail"] is not None


def test_test_names_the_dataset_classes(custom):
    results = json.loads((custom["tmp"] / "metrics.json").read_text())
    assert [c["name"] for c in results["per_class"]] == NAMES
    for name in NAMES:
        assert name in custom["table"]


def test_predict_writes_label_pngs_and_a_legend(custom):
    pred = custom["tmp"] / "pred"
    stems = sorted(p.stem for p in (custom["root"] / "imgs" / "val").glob("*.png"))
    assert sorted(p.name[: -len("_labels.png")] for p in pred.glob("*_labels.png")) == stems
    for stem in stems:
        labels = np.array(Image.open(pred / f"{stem}_labels.png"))
        assert labels.shape == (64, 128) and labels.max() < 7
    assert (pred / "legend.png").stat().st_size > 0


def test_model_by_import_path_trains_resumes_tests_predicts_converts(
    tmp_path, capsys, tiny_config, synthetic
):
    work = tmp_path / "run"
    short = overrides(schedule__max_iters=2, evaluation__interval=0)
    # a separate process finds the model through PYTHONPATH, as a user's own package
    first = run_subprocess("train", tiny_config, "--work-dir", work, *short)
    assert first.code == 0, first.err
    assert run_cli(capsys, "train", "--work-dir", work, "--resume",
                   *overrides(schedule__max_iters=3)).code == 0  # fmt: skip
    ckpt = work / "checkpoints" / "last.pth"
    assert checkpoint(ckpt)["iteration"] == 3
    tested = run_cli(capsys, "test", "-", ckpt, "--out", tmp_path / "m.json")
    assert tested.code == 0 and json.loads((tmp_path / "m.json").read_text())["num_images"] == 4
    image = sorted((synthetic / "leftImg8bit" / "val").rglob("*.png"))[0]
    for name in ("clean.pth", "clean.safetensors"):
        converted = tmp_path / name
        result = run_cli(capsys, "convert", ckpt, converted, "--config", tiny_config)
        assert result.code == 0, result.err
        out = tmp_path / f"pred_{converted.suffix[1:]}"
        assert run_cli(capsys, "predict", converted, image, "--out", out).code == 0
        assert (out / f"{image.stem}_labels.png").is_file()
    original = run_cli(capsys, "predict", ckpt, image, "--out", tmp_path / "pred")
    assert original.code == 0
    same = [np.array(Image.open(d / f"{image.stem}_labels.png")) for d in
            (tmp_path / "pred", tmp_path / "pred_pth", tmp_path / "pred_safetensors")]  # fmt: skip
    np.testing.assert_array_equal(same[1], same[0])
    np.testing.assert_array_equal(same[2], same[0])


def _segformer(folder: Path) -> Path:
    transformers = pytest.importorskip("transformers")
    config = transformers.SegformerConfig(
        num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
        num_attention_heads=[1, 1], patch_sizes=[7, 3], strides=[4, 2], mlp_ratios=[2, 2],
        decoder_hidden_size=16, num_labels=19,
    )  # fmt: skip
    transformers.SegformerForSemanticSegmentation(config).save_pretrained(folder)
    return folder


def test_hugging_face_model_trains_resumes_tests_predicts(tmp_path, capsys, synthetic):
    source = _segformer(tmp_path / "segformer")
    model = {"name": "huggingface", "num_classes": 19, "source": str(source)}
    config = write_config(tmp_path / "hf.yaml", small_config(synthetic, model=model))
    work = tmp_path / "run"
    args = overrides(schedule__max_iters=2, evaluation__interval=2)
    assert run_cli(capsys, "train", config, "--work-dir", work, *args).code == 0
    resumed = run_cli(capsys, "train", "--work-dir", work, "--resume",
                      *overrides(schedule__max_iters=3))  # fmt: skip
    assert resumed.code == 0, resumed.err
    ckpt = work / "checkpoints" / "last.pth"
    assert checkpoint(ckpt)["iteration"] == 3
    assert yaml.safe_load((work / "config.yaml").read_text())["model"]["source"] == str(source)
    tested = run_cli(capsys, "test", "-", ckpt, "--out", tmp_path / "m.json")
    assert tested.code == 0, tested.err
    assert "mIoU" in tested.out
    image = sorted((synthetic / "leftImg8bit" / "val").rglob("*.png"))[0]
    predicted = run_cli(capsys, "predict", ckpt, image, "--out", tmp_path / "pred")
    assert predicted.code == 0, predicted.err
    labels = np.array(Image.open(tmp_path / "pred" / f"{image.stem}_labels.png"))
    assert labels.shape == (64, 128) and labels.max() < 19
