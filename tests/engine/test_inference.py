import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aucseg.engine.inference import (
    inference,
    inference_views,
    slide_logits,
    slide_windows,
    whole_logits,
)

C = 4


def pointwise_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Conv2d(3, C, 1).eval()


class Downsampling(nn.Module):
    """Returns logits at half resolution, like a segmentation head at stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = pointwise_model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.avg_pool2d(x, 2))


class Recorder(nn.Module):
    """Records its input sizes; returns the first channel scaled by 1..C as logits."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[-2:]))
        return x[:, :1].repeat(1, C, 1, 1) * torch.arange(1, C + 1).view(1, C, 1, 1)


def test_slide_windows_cityscapes_layout():
    # spec §4.3: crop 1024 stride 768 on 1024x2048 -> 1x3 windows, last aligned to the border
    wins = slide_windows(1024, 2048, (1024, 1024), (768, 768))
    assert wins == [(0, 1024, 0, 1024), (0, 1024, 768, 1792), (0, 1024, 1024, 2048)]


def test_slide_windows_cover_every_pixel_and_stay_inside():
    for h, w in [(5, 7), (20, 33), (16, 16), (17, 40)]:
        wins = slide_windows(h, w, (8, 10), (6, 4))
        count = torch.zeros(h, w)
        for y1, y2, x1, x2 in wins:
            assert 0 <= y1 < y2 <= h and 0 <= x1 < x2 <= w
            assert y2 - y1 == min(8, h) and x2 - x1 == min(10, w)
            count[y1:y2, x1:x2] += 1
        assert bool((count > 0).all())
        h_grids = max(h - 8 + 6 - 1, 0) // 6 + 1
        w_grids = max(w - 10 + 4 - 1, 0) // 4 + 1
        assert len(wins) == h_grids * w_grids


def test_whole_logits_resizes_bilinear_to_out_size():
    model, x = pointwise_model(), torch.randn(1, 3, 8, 12)
    out = whole_logits(model, x, (16, 24))
    expected = F.interpolate(model(x), size=(16, 24), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected)


def test_whole_logits_upsamples_head_output_to_input_size_first():
    model, x = Downsampling(), torch.randn(1, 3, 8, 12)
    at_input = F.interpolate(model(x), size=(8, 12), mode="bilinear", align_corners=False)
    expected = F.interpolate(at_input, size=(5, 6), mode="bilinear", align_corners=False)
    torch.testing.assert_close(whole_logits(model, x, (5, 6)), expected)


def test_slide_equals_whole_for_a_pointwise_model():
    model, x = pointwise_model(), torch.randn(1, 3, 21, 34)
    slide = slide_logits(model, x, crop_size=(8, 10), stride=(6, 7), out_size=(30, 40))
    torch.testing.assert_close(slide, whole_logits(model, x, (30, 40)), rtol=1e-5, atol=1e-5)


def test_slide_averages_overlapping_windows():
    # A model whose output depends on the window (it subtracts the window mean) makes overlap
    # averaging visible: compare against a direct count-map computation.
    class Centred(nn.Module):
        def forward(self, x):
            y = x[:, :1] - x[:, :1].mean()
            return y.repeat(1, 2, 1, 1)

    x = torch.randn(1, 3, 10, 13)
    total, count = torch.zeros(1, 2, 10, 13), torch.zeros(1, 1, 10, 13)
    for y1, y2, x1, x2 in slide_windows(10, 13, (6, 6), (4, 4)):
        total[:, :, y1:y2, x1:x2] += Centred()(x[:, :, y1:y2, x1:x2])
        count[:, :, y1:y2, x1:x2] += 1
    torch.testing.assert_close(slide_logits(Centred(), x, 6, 4), total / count)


def test_crop_and_stride_accept_ints_and_numpy_ints():
    import numpy as np

    model, x = pointwise_model(), torch.randn(1, 3, 12, 12)
    a = slide_logits(model, x, crop_size=8, stride=4)
    b = slide_logits(model, x, crop_size=(np.int64(8), np.int64(8)), stride=np.int64(4))
    torch.testing.assert_close(a, b)


def test_image_smaller_than_crop_is_not_padded():
    rec, x = Recorder(), torch.randn(1, 3, 9, 11)
    out = slide_logits(rec, x, crop_size=(16, 16), stride=(12, 12))
    assert rec.sizes == [(9, 11)]
    assert out.shape == (1, C, 9, 11)


def test_inference_returns_softmax_probabilities():
    model, x = pointwise_model(), torch.randn(1, 3, 8, 8)
    probs = inference(model, x, (8, 8))
    torch.testing.assert_close(probs, model(x).softmax(1))
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 8, 8))
    sig = inference(model, x, (8, 8), activation="sigmoid")
    torch.testing.assert_close(sig, model(x).sigmoid())


def test_flip_tta_averages_softmax_of_flipped_back_views():
    model, x = Downsampling(), torch.randn(1, 3, 8, 12)
    plain = whole_logits(model, x, (8, 12)).softmax(1)
    flipped = whole_logits(model, x.flip(-1), (8, 12)).flip(-1).softmax(1)
    out = inference(model, x, (8, 12), flip=True)
    torch.testing.assert_close(out, (plain + flipped) / 2)


def test_multiscale_views_rescale_the_image():
    rec = Recorder()
    views = list(inference_views(rec, torch.randn(1, 3, 10, 20), (10, 20), scales=(0.5, 1.5)))
    assert rec.sizes == [(5, 10), (15, 30)]
    assert all(v.shape == (1, C, 10, 20) for v in views)
    probs = inference(pointwise_model(), torch.randn(1, 3, 10, 20), (10, 20), scales=(0.5, 1.0))
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 10, 20))


def test_bad_arguments_raise():
    model, x = pointwise_model(), torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="mode"):
        inference(model, x, (8, 8), mode="tiles")
    with pytest.raises(ValueError, match="crop_size"):
        inference(model, x, (8, 8), mode="slide")
    with pytest.raises(ValueError, match=r"\(1, 3, h, w\)"):
        inference(model, x[0], (8, 8))
    with pytest.raises(ValueError, match="num_classes=5"):
        inference(model, x, (8, 8), num_classes=5)
    with pytest.raises(ValueError, match="scales"):
        inference(model, x, (8, 8), scales=())
    with pytest.raises(ValueError, match="activation"):
        inference(model, x, (8, 8), activation="tanh")
