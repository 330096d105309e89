import random

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from aucseg.data import seed_worker
from aucseg.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Compose,
    EvalPreset,
    Normalize,
    Pad,
    PhotoMetricDistortion,
    RandomCrop,
    RandomFlip,
    Resize,
    ResizeToMultiple,
    ToTensor,
    _convert,
    build_test_pipeline,
    build_train_pipeline,
    rescale_size,
    resize_label,
)
from aucseg.errors import InputError


def _sample(h=40, w=60, seed=0, num_classes=5):
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8),
        "label": rng.integers(0, num_classes, size=(h, w)).astype(np.int64),
    }


@pytest.mark.parametrize(
    ("hw", "scale", "expected"),
    [
        ((512, 683), (2048, 512), (512, 683)),  # short side already 512
        ((300, 1000), (2048, 512), (512, 1707)),  # factor min(2.048, 1.7067)
        ((100, 5000), (2048, 512), (41, 2048)),  # long side binds: factor 0.4096
        ((1024, 2048), (2048, 1024), (1024, 2048)),
    ],
)
def test_rescale_size_matches_imrescale(hw, scale, expected):
    assert rescale_size(hw, scale) == expected
    assert rescale_size(hw, scale[::-1]) == expected  # (long, short) order is irrelevant


def test_resize_random_ratio_draws_from_global_numpy():
    s = _sample(40, 60)
    np.random.seed(3)
    out = Resize((64, 32), ratio_range=(0.5, 2.0))(s)
    np.random.seed(3)
    ratio = np.random.random_sample() * 1.5 + 0.5
    expected = rescale_size((40, 60), (int(64 * ratio), int(32 * ratio)))
    assert out["image"].shape[:2] == expected == out["label"].shape == out["img_shape"]
    assert out["image"].dtype == np.uint8
    assert s["image"].shape == (40, 60, 3)  # input sample untouched


def test_labels_are_only_resized_with_nearest():
    s = _sample(37, 53)
    s["label"] = np.where(s["label"] > 2, 7, 255).astype(np.int64)
    out = Resize((200, 90), keep_ratio=True)(s)
    assert set(np.unique(out["label"])) <= {7, 255}
    ref = cv2.resize(
        s["label"].astype(np.uint8), out["label"].shape[::-1], interpolation=cv2.INTER_NEAREST
    )
    np.testing.assert_array_equal(out["label"], ref)
    assert out["label"].dtype == np.int64
    # the image is resized bilinearly, as OpenCV INTER_LINEAR
    ref_img = cv2.resize(s["image"], out["image"].shape[1::-1], interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out["image"], ref_img)


@pytest.mark.parametrize("hw", [(13, 29), (80, 33)])
def test_label_resize_fallback_for_wide_ids_matches_opencv(hw):
    label = np.random.default_rng(0).integers(0, 1000, size=(21, 17)).astype(np.int64)
    ref = cv2.resize(label.astype(np.uint16), hw[::-1], interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(resize_label(label, hw), ref)


def test_test_time_resize_keeps_label():
    s = _sample(40, 60)
    out = Resize((64, 32), resize_label=False)(s)
    assert out["image"].shape[:2] == (32, 48)
    assert out["label"] is s["label"]


def _crop_with_boxes(monkeypatch, crop, label, boxes):
    """Run crop with get_crop_bbox returning ``boxes`` in order; return (sample, draws)."""
    calls = []

    def fake(hw):
        calls.append(hw)
        return boxes[len(calls) - 1]

    monkeypatch.setattr(crop, "get_crop_bbox", fake)
    sample = {"image": np.zeros((*label.shape, 3), np.uint8), "label": label}
    return crop(sample), len(calls)


def test_random_crop_stops_at_first_accepted_crop(monkeypatch):
    label = np.zeros((8, 16), np.int64)
    label[:, 8:] = np.arange(8) % 2 + 1  # right half: classes 1 and 2, left half: only 0
    crop = RandomCrop((8, 8), cat_max_ratio=0.75)
    bad, good = (0, 8, 0, 8), (0, 8, 8, 16)
    out, draws = _crop_with_boxes(monkeypatch, crop, label, [bad, bad, good, bad])
    assert draws == 3 and out["crop_bbox"] == good
    np.testing.assert_array_equal(out["label"], label[:, 8:])


def test_random_crop_gives_up_after_ten_retries(monkeypatch):
    label = np.zeros((8, 16), np.int64)
    crop = RandomCrop((8, 8), cat_max_ratio=0.75)
    boxes = [(0, 8, 0, 8)] * 10 + [(0, 8, 5, 13)]
    out, draws = _crop_with_boxes(monkeypatch, crop, label, boxes)
    assert draws == 11 and out["crop_bbox"] == (0, 8, 5, 13)  # the last drawn box is used
    # cat_max_ratio >= 1 disables the check: a single draw
    _, draws = _crop_with_boxes(monkeypatch, RandomCrop((8, 8), 1.0), label, [(0, 8, 0, 8)])
    assert draws == 1


def test_crop_ratio_excludes_ignore():
    crop = RandomCrop((10, 10), cat_max_ratio=0.75)
    # 60 ignore, 30 of class 1, 10 of class 2: 30/40 = 0.75 is not < 0.75
    assert not crop.accepts(np.array([255] * 60 + [1] * 30 + [2] * 10))
    assert crop.accepts(np.array([255] * 60 + [1] * 25 + [2] * 15))  # 0.625
    assert not crop.accepts(np.array([255] * 90 + [1] * 10))  # one class only
    assert not crop.accepts(np.full(100, 255))


def test_random_crop_draws_and_sizes():
    s = _sample(20, 30)
    np.random.seed(5)
    out = RandomCrop((8, 12))(s)
    np.random.seed(5)
    y1, x1 = np.random.randint(0, 13), np.random.randint(0, 19)
    np.testing.assert_array_equal(out["image"], s["image"][y1 : y1 + 8, x1 : x1 + 12])
    np.testing.assert_array_equal(out["label"], s["label"][y1 : y1 + 8, x1 : x1 + 12])
    small = RandomCrop((64, 64))(s)  # larger than the image: whole image kept
    assert small["image"].shape[:2] == (20, 30)


def test_flip_pairs_image_and_label():
    s = _sample(6, 9)
    out = RandomFlip(prob=1.0)(s)
    np.testing.assert_array_equal(out["image"], s["image"][:, ::-1])
    np.testing.assert_array_equal(out["label"], s["label"][:, ::-1])
    assert out["flip"]
    same = RandomFlip(prob=0.0)(s)
    assert not same["flip"] and same["image"] is s["image"]
    vert = RandomFlip(prob=1.0, direction="vertical")(s)
    np.testing.assert_array_equal(vert["label"], s["label"][::-1])


class _ScriptedRNG:
    """Stands in for np.random.randint/uniform, recording calls and returning scripted values."""

    def __init__(self, randint_values, uniform_values):
        self.randint_values = list(randint_values)
        self.uniform_values = list(uniform_values)
        self.calls = []

    def randint(self, low, high=None):
        self.calls.append(("randint", low, high))
        return self.randint_values.pop(0)

    def uniform(self, low, high):
        self.calls.append(("uniform", low, high))
        return self.uniform_values.pop(0)


def _patch_rng(monkeypatch, rng):
    monkeypatch.setattr(np.random, "randint", rng.randint)
    monkeypatch.setattr(np.random, "uniform", rng.uniform)


def test_photometric_draw_order_mode_0(monkeypatch):
    # brightness on, mode 0, saturation on, hue on, contrast (after) on
    rng = _ScriptedRNG([1, 0, 1, 1, 5, 1], [10.0, 1.2, 0.8])
    _patch_rng(monkeypatch, rng)
    PhotoMetricDistortion()(_sample(4, 4))
    assert rng.calls == [
        ("randint", 2, None), ("uniform", -32, 32),  # brightness
        ("randint", 2, None),  # mode
        ("randint", 2, None), ("uniform", 0.5, 1.5),  # saturation
        ("randint", 2, None), ("randint", -18, 18),  # hue
        ("randint", 2, None), ("uniform", 0.5, 1.5),  # contrast last in mode 0
    ]  # fmt: skip


def test_photometric_draw_order_mode_1(monkeypatch):
    rng = _ScriptedRNG([0, 1, 1, 0, 0], [0.9])
    _patch_rng(monkeypatch, rng)
    PhotoMetricDistortion()(_sample(4, 4))
    assert [c[0] for c in rng.calls] == ["randint", "randint", "randint", "uniform", "randint",
                                         "randint"]  # fmt: skip


def test_photometric_brightness_and_contrast_values(monkeypatch):
    img = np.array([[[0, 100, 250]]], np.uint8)
    # brightness +10.7 only (mode 1 with contrast off, saturation and hue off)
    _patch_rng(monkeypatch, _ScriptedRNG([1, 1, 0, 0, 0], [10.7]))
    out = PhotoMetricDistortion()({"image": img})["image"]
    np.testing.assert_array_equal(out, [[[10, 110, 255]]])  # truncated, clipped at 255
    # contrast x1.5 only
    _patch_rng(monkeypatch, _ScriptedRNG([0, 1, 1, 0, 0], [1.5]))
    out = PhotoMetricDistortion()({"image": img})["image"]
    np.testing.assert_array_equal(out, [[[0, 150, 255]]])
    # all gates closed: unchanged
    _patch_rng(monkeypatch, _ScriptedRNG([0, 0, 0, 0, 0], []))
    np.testing.assert_array_equal(PhotoMetricDistortion()({"image": img})["image"], img)


def test_photometric_hue_and_saturation(monkeypatch):
    img = np.array([[[200, 50, 50], [40, 180, 90]]], np.uint8)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    _patch_rng(monkeypatch, _ScriptedRNG([0, 1, 0, 0, 1, -18], []))  # hue shift -18 only
    out = PhotoMetricDistortion()({"image": img})["image"]
    expected_hsv = hsv.copy()
    expected_hsv[..., 0] = (hsv[..., 0].astype(int) - 18) % 180
    np.testing.assert_array_equal(out, cv2.cvtColor(expected_hsv, cv2.COLOR_HSV2RGB))
    grey = PhotoMetricDistortion()
    _patch_rng(monkeypatch, _ScriptedRNG([0, 1, 0, 1, 0], [0.0]))  # saturation x0 -> grey
    out = grey({"image": img})["image"]
    assert (out.max(axis=-1) == out.min(axis=-1)).all()


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 13.37), (0.731, 0.0), (1.49, 0.0), (1.0, -31.9)])
def test_photometric_lookup_table_equals_float_arithmetic(alpha, beta):
    img = np.random.default_rng(0).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    reference = np.clip(img.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(_convert(img, alpha, beta), reference)
    np.testing.assert_array_equal(_convert(img[..., 1], alpha, beta), reference[..., 1])


def test_photometric_needs_uint8():
    with pytest.raises(TypeError, match="uint8"):
        PhotoMetricDistortion()({"image": np.zeros((2, 2, 3), np.float32)})


def test_normalize_and_pad_values():
    s = _sample(5, 7)
    norm = Normalize()(s)
    expected = (s["image"].astype(np.float64) - IMAGENET_MEAN) / IMAGENET_STD
    assert norm["image"].dtype == np.float32
    np.testing.assert_allclose(norm["image"], expected, rtol=1e-6, atol=1e-5)
    padded = Pad((8, 10))(norm)
    assert padded["image"].shape == (8, 10, 3) and padded["label"].shape == (8, 10)
    assert (padded["image"][5:] == 0).all() and (padded["image"][:, 7:] == 0).all()
    assert (padded["label"][5:] == 255).all() and (padded["label"][:, 7:] == 255).all()
    np.testing.assert_array_equal(padded["image"][:5, :7], norm["image"])
    np.testing.assert_array_equal(padded["label"][:5, :7], s["label"])
    with pytest.raises(ValueError, match="smaller"):
        Pad((4, 10))(s)


@pytest.mark.parametrize("hw", [(1, 3), (3, 1), (1, 1), (2, 4)])
def test_normalize_tiny_images(hw):
    img = np.random.default_rng(1).integers(0, 256, size=(*hw, 3), dtype=np.uint8)
    out = Normalize()({"image": img[:, ::-1]})["image"]  # non-contiguous input too
    expected = (img[:, ::-1].astype(np.float64) - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-5)


def test_resize_to_multiple_rounds_up():
    out = ResizeToMultiple(32)({"image": np.zeros((375, 500, 3), np.uint8)})
    assert out["image"].shape == (384, 512, 3)
    same = ResizeToMultiple(32)({"image": np.zeros((64, 96, 3), np.uint8)})
    assert same["image"].shape == (64, 96, 3)


def test_train_pipeline_output_contract():
    s = _sample(40, 60)
    pipe = build_train_pipeline(crop_size=(24, 32), img_scale=(64, 32), ratio_range=(0.5, 0.6))
    np.random.seed(0)
    out = pipe(s)
    assert out["image"].dtype == torch.float32 and out["image"].shape == (3, 24, 32)
    assert out["label"].dtype == torch.int64 and out["label"].shape == (24, 24 + 8)
    # ratio <= 0.6 -> image at most 19x29: bottom/right are padding (label 255, image 0)
    assert (out["label"][20:] == 255).all() and (out["image"][:, 20:] == 0).all()
    assert set(out["label"].unique().tolist()) <= set(range(5)) | {255}
    assert isinstance(pipe, Compose) and "RandomCrop" in repr(pipe)


def test_test_pipeline_keeps_original_label():
    s = _sample(40, 60)
    out = build_test_pipeline(img_scale=(64, 32), size_divisor=32)(s)
    assert out["image"].shape == (3, 32, 64)  # 32x48 then rounded up to 32x64
    assert out["label"].shape == (40, 60) and out["ori_shape"] == (40, 60)
    torch.testing.assert_close(out["label"], torch.from_numpy(s["label"]))
    out2 = build_test_pipeline(img_scale=(64, 32))({"image": s["image"]})
    assert out2["image"].shape == (3, 32, 48) and "label" not in out2


@pytest.mark.parametrize(
    ("hw", "img_scale", "divisor"),
    [
        ((375, 500), (2048, 512), 32),  # ADE20K-like: upscaled, then rounded up
        ((1024, 2048), (2048, 1024), None),  # Cityscapes: already fits, no rounding
        ((61, 47), (64, 32), 8),  # downscaled, odd sizes
        ((33, 50), None, 16),  # no keep-ratio resize, only the multiple
    ],
)
def test_eval_preset_is_the_test_pipeline_bit_for_bit(hw, img_scale, divisor):
    s = _sample(*hw)
    # the test pipeline as written before the preset existed, op by op
    legacy = [Resize(img_scale, keep_ratio=True, resize_label=False)] if img_scale else []
    legacy += [ResizeToMultiple(divisor)] if divisor else []
    expected = Compose([*legacy, Normalize(), ToTensor()])({"image": s["image"]})["image"]
    image, meta = EvalPreset(img_scale, divisor)(s["image"])
    assert image.dtype == torch.float32 and image.is_contiguous()
    assert torch.equal(image, expected)
    out = build_test_pipeline(img_scale, size_divisor=divisor)(s)
    assert torch.equal(out["image"], image)
    assert meta["ori_shape"] == hw == out["ori_shape"] and meta["img_shape"] == image.shape[1:]
    assert out["img_shape"] == meta["img_shape"] and out["scale_factor"] == meta["scale_factor"]
    torch.testing.assert_close(out["label"], torch.from_numpy(s["label"]))


def test_eval_preset_meta_and_errors():
    image, meta = EvalPreset((64, 32), 32)(np.zeros((40, 60, 3), np.uint8))
    assert tuple(image.shape) == (3, 32, 64)  # 40x60 -> 32x48 -> 32x64
    assert meta == {"ori_shape": (40, 60), "img_shape": (32, 64), "scale_factor": (0.8, 0.8)}
    assert EvalPreset(None)(np.zeros((5, 7, 3), np.uint8))[1]["scale_factor"] == (1.0, 1.0)
    with pytest.raises(TypeError, match="uint8"):
        EvalPreset((64, 32))(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InputError, match=r"\(H, W, 3\), got \(4, 4\)"):
        EvalPreset((64, 32))(np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="img_scale"):
        EvalPreset((64, 0))


def test_train_pipeline_is_deterministic_under_a_seed():
    s = _sample(80, 120, num_classes=6)
    pipe = build_train_pipeline(crop_size=(32, 32), img_scale=(128, 64))

    def run(seed):
        np.random.seed(seed)
        return [pipe(s) for _ in range(4)]

    a, b, c = run(1), run(1), run(2)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x["image"], y["image"])
        torch.testing.assert_close(x["label"], y["label"])
    assert any(not torch.equal(x["image"], z["image"]) for x, z in zip(a, c, strict=True))


class _Items(Dataset):
    def __init__(self):
        self.pipe = build_train_pipeline(crop_size=(16, 16), img_scale=(64, 32))
        self.base = _sample(40, 60, num_classes=4)

    def __len__(self):
        return 6

    def __getitem__(self, i):
        out = self.pipe(self.base)
        return out["image"], out["label"], random.random()


def _load_all(seed):
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        _Items(), batch_size=2, num_workers=2, worker_init_fn=seed_worker, generator=gen,
        multiprocessing_context="fork",
    )  # fmt: skip
    return list(loader)


def test_seed_worker_makes_dataloader_workers_repeatable():
    a, b, c = _load_all(0), _load_all(0), _load_all(1)
    for (ia, la, ra), (ib, lb, rb) in zip(a, b, strict=True):
        torch.testing.assert_close(ia, ib)
        torch.testing.assert_close(la, lb)
        torch.testing.assert_close(ra, rb)
    assert any(not torch.equal(x[0], z[0]) for x, z in zip(a, c, strict=True))
    # the two workers do not repeat each other's draws
    assert not torch.equal(a[0][0], a[1][0])


def test_invalid_arguments():
    with pytest.raises(ValueError, match="crop_size"):
        RandomCrop((0, 5))
    with pytest.raises(TypeError, match="crop_size"):
        RandomCrop("512")
    assert RandomCrop(np.int64(8)).crop_size == (8, 8) == Pad([8, 8.0]).size
    with pytest.raises(ValueError, match="ratio_range"):
        Resize((64, 32), ratio_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="prob"):
        RandomFlip(1.5)
    with pytest.raises(ValueError, match="size_divisor"):
        ResizeToMultiple(0)
    with pytest.raises(TypeError, match="callable"):
        Compose([1])


def test_train_pipeline_draw_order_matches_mmseg(monkeypatch):
    """Resize ratio, crop offsets (y, x), flip, then the photometric gates, as in mmseg."""
    calls = []
    for name in ("random_sample", "randint", "rand", "uniform"):
        original = getattr(np.random, name)

        def record(*args, _name=name, _original=original):
            calls.append((_name, *args))
            return _original(*args)

        monkeypatch.setattr(np.random, name, record)
    np.random.seed(0)
    build_train_pipeline(crop_size=(16, 16), img_scale=(64, 32))(_sample(40, 60))
    assert calls[0] == ("random_sample",)
    assert calls[1][:2] == ("randint", 0) and calls[2][:2] == ("randint", 0)
    assert calls[3] == ("rand",)
    assert calls[4] == ("randint", 2)  # brightness gate
    assert all(c[0] in ("randint", "uniform") for c in calls[4:])
