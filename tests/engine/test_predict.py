"""Prediction: one preprocessing path with evaluation, label PNGs, masks, overlays, legend."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from aucseg.data import build_dataset, build_test_pipeline, read_label, write_label
from aucseg.engine.evaluate import evaluate
from aucseg.engine.inference import inference
from aucseg.engine.predict import (
    colorize,
    find_images,
    model_input,
    overlay,
    predict_image,
    predict_images,
    read_rgb,
    write_label_png,
    write_rgb,
)
from aucseg.errors import InputError
from aucseg.models import build_model

from .tiny import TinyNet

PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
IMG_SCALE, DIVISOR = (64, 40), 8  # a 20x30 image: factor min(64/30, 40/20) = 2, then x8


def scene(height: int = 20, width: int = 30, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    rgb[:, : width // 2, 0] = 250  # a red left half
    return rgb


def folder_dataset(root, images: dict[str, np.ndarray], labels: dict | None = None):
    """Write ``images`` (and labels) as a ``folder`` dataset's val split and open it with the
    test pipeline, as ``aucseg test`` does."""
    for name, rgb in images.items():
        write_rgb(root / "images" / "val" / f"{name}.png", rgb)
        label = (labels or {}).get(name, np.zeros(rgb.shape[:2], np.uint8))
        (root / "annotations" / "val").mkdir(parents=True, exist_ok=True)
        write_label(root / "annotations" / "val" / f"{name}.png", label)
    pipeline = build_test_pipeline(IMG_SCALE, DIVISOR)
    dataset = build_dataset(
        "folder", root, "val", pipeline, classes=["red", "green", "blue"], img_suffix=".png"
    )
    return dataset, pipeline


def tiny_model(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet(num_classes=3).eval()


# ----------------------------------------------------------------------------- rendering


def test_colorize_maps_ids_and_blacks_out_ignore():
    label = np.array([[0, 1], [2, 255]])
    out = colorize(label, PALETTE)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[0, 0].tolist() == [255, 0, 0] and out[1, 0].tolist() == [0, 0, 255]
    assert out[1, 1].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(colorize(torch.from_numpy(label), PALETTE), out)
    with pytest.raises(InputError, match="palette"):
        colorize(label, [(1, 2)])


def test_overlay_blends():
    img = np.full((2, 2, 3), 100, np.uint8)
    mask = np.full((2, 2, 3), 200, np.uint8)
    assert overlay(img, mask, alpha=0.25)[0, 0].tolist() == [125, 125, 125]
    with pytest.raises(ValueError, match="alpha"):
        overlay(img, mask, alpha=2.0)


def test_label_png_keeps_class_ids(tmp_path):
    small = np.array([[0, 1], [2, 255]], np.int64)
    path = write_label_png(tmp_path / "a.png", small)
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint8 and stored.tolist() == small.tolist()
    many = np.array([[0, 300]], np.int64)  # more than 255 classes
    stored = cv2.imread(str(write_label_png(tmp_path / "b.png", many)), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16 and stored.tolist() == [[0, 300]]


def test_find_images_takes_files_and_folders(tmp_path):
    for rel in ("a/x.png", "a/sub/y.JPG", "a/notes.txt", "z.bmp"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = find_images([tmp_path / "a", tmp_path / "z.bmp"])
    assert found == [tmp_path / "a/sub/y.JPG", tmp_path / "a/x.png", tmp_path / "z.bmp"]
    with pytest.raises(FileNotFoundError, match=r"nothere\.png"):
        find_images([tmp_path / "nothere.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        find_images([tmp_path / "empty"])


# ----------------------------------------------------------------------------- one path


def test_model_input_equals_the_validation_item(tmp_path):
    rgb = scene()
    dataset, pipeline = folder_dataset(tmp_path, {"a": rgb})
    item = dataset[0]
    x = model_input(read_rgb(tmp_path / "images/val/a.png"), pipeline)
    assert x.shape == (1, 3, 40, 64)  # keep-ratio x2 -> 40x60 -> multiple of 8: 40x64
    assert torch.equal(x[0], item["image"])
    assert item["label"].shape == (20, 30)  # evaluation happens at the original size


def test_predict_image_equals_the_argmax_of_the_evaluation_logits(tmp_path):
    rgb = scene()
    dataset, pipeline = folder_dataset(tmp_path, {"a": rgb})
    model = tiny_model()
    pred = predict_image(model, rgb, pipeline)
    item = dataset[0]
    with torch.inference_mode():
        probs = inference(model, item["image"][None], tuple(item["label"].shape))
    assert pred.shape == (20, 30)
    np.testing.assert_array_equal(pred, probs.argmax(1)[0].numpy())
    assert len(np.unique(pred)) > 1  # the comparison is not trivially all one class


def test_evaluate_scores_the_predictions_as_perfect(tmp_path):
    images = {"a": scene(seed=0), "b": scene(24, 18, seed=1)}
    model = tiny_model()
    pipeline = build_test_pipeline(IMG_SCALE, DIVISOR)
    labels = {k: predict_image(model, v, pipeline).astype(np.uint8) for k, v in images.items()}
    dataset, _ = folder_dataset(tmp_path, images, labels)
    results = evaluate(model, dataset, 3, dataset.classes, progress=False)
    assert results["aAcc"] == pytest.approx(100.0) and results["mIoU"] == pytest.approx(100.0)


def test_predict_image_is_repeatable_with_nmf_and_releases_the_generator():
    torch.manual_seed(0)
    model = build_model("segnext_tiny", 3).eval()
    rgb = scene(32, 32)
    pipeline = build_test_pipeline(None, 32)
    first = predict_image(model, rgb, pipeline, nmf_seed=3)
    torch.rand(10)  # moves the global RNG
    np.testing.assert_array_equal(predict_image(model, rgb, pipeline, nmf_seed=3), first)
    nmf = [m for m in model.modules() if hasattr(m, "generator")]
    assert nmf and all(m.generator is None for m in nmf)  # training keeps the global RNG


# ----------------------------------------------------------------------------- files


def test_predict_images_writes_labels_masks_overlays_and_a_legend(tmp_path):
    rgb = scene()
    write_rgb(tmp_path / "in" / "scene.png", rgb)
    model = tiny_model().train()
    pipeline = build_test_pipeline(IMG_SCALE, DIVISOR)
    paths = predict_images(
        model, find_images([tmp_path / "in"]), tmp_path / "out", PALETTE, pipeline,
        ["red", "green", "blue"], progress=False,
    )  # fmt: skip
    names = [p.name for p in paths]
    assert names == ["scene_labels.png", "scene_mask.png", "scene_overlay.png", "legend.png"]
    assert model.training  # its mode is restored
    expected = predict_image(model.eval(), rgb, pipeline)
    np.testing.assert_array_equal(read_label(paths[0]), expected)
    mask = read_rgb(paths[1])
    np.testing.assert_array_equal(mask, colorize(expected, PALETTE))
    np.testing.assert_array_equal(read_rgb(paths[2]), overlay(rgb, mask))
    assert read_rgb(paths[3]).shape[2] == 3


def test_predict_images_refuses_shared_stems_and_unreadable_files(tmp_path):
    for folder in ("a", "b"):
        write_rgb(tmp_path / folder / "x.png", scene())
    pipeline = build_test_pipeline(None)
    args = (tmp_path / "out", PALETTE, pipeline)
    with pytest.raises(InputError, match="stems"):
        predict_images(tiny_model(), [tmp_path / "a/x.png", tmp_path / "b/x.png"], *args)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"bad\.png"):
        predict_images(tiny_model(), [tmp_path / "bad.png"], *args, progress=False)
