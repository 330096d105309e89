import cv2
import numpy as np
import pytest
import torch
from torch import nn

from aucseg.engine.predict import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    colorize,
    overlay,
    predict_images,
    preprocess,
    rescale_size,
)

PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


class RedDetector(nn.Module):
    """Class 0 where the normalised red channel is high, class 2 elsewhere; records inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x)
        red = x[:, :1]
        return torch.cat([red, torch.zeros_like(red) - 10, -red], dim=1)


def _write_image(path, height=20, width=30):
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, : width // 2, 0] = 250  # left half red
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return rgb


def test_colorize_maps_ids_and_blacks_out_ignore():
    label = np.array([[0, 1], [2, 255]])
    out = colorize(label, PALETTE)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[0, 0].tolist() == [255, 0, 0] and out[1, 0].tolist() == [0, 0, 255]
    assert out[1, 1].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(colorize(torch.from_numpy(label), PALETTE), out)
    with pytest.raises(ValueError, match="palette"):
        colorize(label, [(1, 2)])


def test_overlay_blends():
    img = np.full((2, 2, 3), 100, np.uint8)
    mask = np.full((2, 2, 3), 200, np.uint8)
    assert overlay(img, mask, alpha=0.25)[0, 0].tolist() == [125, 125, 125]
    with pytest.raises(ValueError, match="alpha"):
        overlay(img, mask, alpha=2.0)


def test_rescale_size_follows_mmseg_keep_ratio_and_multiple():
    # ADE: img_scale (2048, 512): a 683x512 image -> factor min(2048/683, 512/512) = 1
    assert rescale_size(512, 683, (2048, 512), None) == (512, 683)
    assert rescale_size(512, 683, (2048, 512), 32) == (512, 704)
    # 300x400 -> factor min(2048/400, 512/300) = 1.7067 -> (512, 683)
    assert rescale_size(300, 400, (2048, 512), None) == (512, 683)
    # very wide image: the long edge limits
    assert rescale_size(100, 1000, (2048, 512), None) == (205, 2048)


def test_preprocess_normalises_rgb():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 255
    x = preprocess(rgb)
    assert x.shape == (1, 3, 2, 3)
    expected = (np.array([255, 0, 0]) - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), expected, rtol=1e-6)


def test_predict_images_writes_masks_and_overlays(tmp_path):
    rgb = _write_image(tmp_path / "scene.png")
    model = RedDetector()
    paths = predict_images(
        model,
        [tmp_path / "scene.png"],
        tmp_path / "out",
        PALETTE,
        img_scale=(64, 40),
        size_divisor=8,
        progress=False,
    )
    assert [p.name for p in paths] == ["scene_mask.png", "scene_overlay.png"]
    # keep-ratio resize 20x30 -> factor min(64/30, 40/20) = 2 -> 40x60 -> multiple of 8: 40x64
    assert tuple(model.inputs[0].shape) == (1, 3, 40, 64)
    mask = cv2.cvtColor(cv2.imread(str(paths[0])), cv2.COLOR_BGR2RGB)
    assert mask.shape == rgb.shape  # back at the original size
    assert mask[10, 2].tolist() == [255, 0, 0]  # red half -> class 0
    assert mask[10, 27].tolist() == [0, 0, 255]  # black half -> class 2
    over = cv2.cvtColor(cv2.imread(str(paths[1])), cv2.COLOR_BGR2RGB)
    assert over[10, 27].tolist() == [0, 0, 128]


def test_predict_images_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothere\.png"):
        predict_images(RedDetector(), [tmp_path / "nothere.png"], tmp_path, PALETTE, progress=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(ValueError, match="stems"):
        predict_images(
            RedDetector(),
            [tmp_path / "a/x.png", tmp_path / "b/x.png"],
            tmp_path,
            PALETTE,
            progress=False,
        )
