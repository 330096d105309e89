"""``aucseg test`` and ``aucseg predict`` on a trained SegNeXt-T: one preprocessing path and one
prediction for an image, the provenance of a results file, ``--device`` and ``--no-progress``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from aucseg.cli import main
from aucseg.data import build_dataset
from aucseg.models import EncoderDecoder

from .conftest import overrides, run_cli

RUNTIME = [
    "--set",
    "runtime.device=auto",
    "runtime.progress=true",
    "--device",
    "cpu",
    "--no-progress",
]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, segnext_config, segnext_run, synthetic):
    """``aucseg test`` over the val split and ``aucseg predict`` of its second image, with the
    SegNeXt-T inputs and logits of both recorded by torch's global module hooks."""
    out = tmp_path_factory.mktemp("evaluated")
    ckpt = segnext_run / "checkpoints" / "last.pth"
    image = build_dataset("cityscapes", synthetic, "val").samples[1][0]
    seen: dict[str, list] = {"test": [], "predict": []}
    command = ["test"]

    def record(module, args, output):
        if isinstance(module, EncoderDecoder):
            seen[command[0]].append((args[0].detach().clone(), output.detach().clone()))

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        test_args = ["test", segnext_config, ckpt, "--out", out / "metrics.json",
                     "--show-dir", out / "shown", "--label", "segnext-t", *RUNTIME]  # fmt: skip
        assert main([str(a) for a in test_args]) == 0
        command[0] = "predict"
        assert (
            main([str(a) for a in ["predict", ckpt, image, "--out", out / "pred", *RUNTIME]]) == 0
        )
    finally:
        handle.remove()
    return {"out": out, "image": image, "seen": seen, "checkpoint": ckpt}


def test_predict_feeds_the_model_the_pixels_test_feeds_it(evaluated):
    (test_input, _), (predict_input, _) = (
        evaluated["seen"]["test"][1],
        *evaluated["seen"]["predict"],
    )
    assert len(evaluated["seen"]["test"]) == 4
    torch.testing.assert_close(predict_input, test_input, rtol=0, atol=0)


def test_predict_labels_equal_the_evaluation_argmax(evaluated):
    (_, test_logits), (_, predict_logits) = (
        evaluated["seen"]["test"][1],
        *evaluated["seen"]["predict"],
    )
    torch.testing.assert_close(predict_logits, test_logits, rtol=0, atol=0)
    stem = evaluated["image"].stem
    labels = np.array(Image.open(evaluated["out"] / "pred" / f"{stem}_labels.png"))
    np.testing.assert_array_equal(
        labels, test_logits.argmax(dim=1)[0].numpy()
    )  # input = image size
    shown = np.array(Image.open(evaluated["out"] / "shown" / f"{stem}_overlay.png"))
    predicted = np.array(Image.open(evaluated["out"] / "pred" / f"{stem}_overlay.png"))
    np.testing.assert_array_equal(predicted, shown)


def test_results_file_records_its_provenance(evaluated, segnext_run):
    results = json.loads((evaluated["out"] / "metrics.json").read_text())
    p = results["provenance"]
    assert p["checkpoint"] == str(evaluated["checkpoint"].resolve())
    assert p["iteration"] == 4 and p["split"] == "val" and p["mode"] == "whole"
    assert p["tta"] is False and p["label"] == "segnext-t" and p["model"] == "segnext_tiny"
    assert p["aucseg_version"] and p["class_ids"] == list(range(19))
    stored = yaml.safe_load((segnext_run / "config.yaml").read_text())
    assert p["config"]["model"] == stored["model"] and p["config"]["data"] == stored["data"]


def test_device_and_no_progress_flags_apply_to_test_and_predict(evaluated):
    runtime = json.loads((evaluated["out"] / "metrics.json").read_text())["provenance"]["config"]
    assert runtime["runtime"]["device"] == "cpu" and runtime["runtime"]["progress"] is False
    assert (evaluated["out"] / "pred" / "legend.png").stat().st_size > 0


def test_device_and_no_progress_flags_apply_to_train(tmp_path, capsys, tiny_config):
    work = tmp_path / "run"
    args = overrides(schedule__max_iters=1, evaluation__interval=0)
    result = run_cli(capsys, "train", tiny_config, "--work-dir", work, *args, *RUNTIME)
    assert result.code == 0, result.err
    runtime = yaml.safe_load((work / "config.yaml").read_text())["runtime"]
    assert runtime["device"] == "cpu" and runtime["progress"] is False


def test_test_accepts_an_official_mmseg_checkpoint(tmp_path, capsys, segnext_config, reference_dir):
    official = reference_dir / "segnext_tiny_c19_official_format.pth"
    out = tmp_path / "official.json"
    result = run_cli(capsys, "test", segnext_config, official, "--out", out)
    assert result.code == 0, result.err
    metrics = json.loads(out.read_text())
    assert metrics["num_images"] == 4 and len(metrics["per_class"]) == 19
    assert 0.0 <= metrics["aAcc"] <= 100.0
