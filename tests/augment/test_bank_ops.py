"""Bank operations: class boxes, shrunken cuts against OpenCV, storage precision, exact pastes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from aucseg.augment.bank_ops import class_boxes, class_boxes_cpu, cut_entry, encode, paste


def _labels(seed: int, b: int = 3, h: int = 21, w: int = 30) -> torch.Tensor:
    """Blocky random labels with ignore (255), negative and too-large values."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 7, (b, (h + 2) // 3, (w + 2) // 3), generator=g)
    labels = coarse.repeat_interleave(3, 1).repeat_interleave(3, 2)[:, :h, :w].contiguous()
    labels[0, :2] = 255
    labels[1, 4, 4] = -1
    labels[2, 7, :5] = 9  # >= num_classes: no class
    return labels


def _brute_box(label: torch.Tensor, cls: int) -> list[int]:
    where = (label == cls).nonzero()
    if where.numel() == 0:
        return [0]
    rows, cols = where.unbind(1)
    return [where.shape[0], int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_boxes_match_brute_force_on_both_paths(seed):
    labels = _labels(seed)
    classes = torch.tensor([0, 2, 3, 5])
    table = class_boxes(labels, classes, 6)
    assert table.shape == (3, 4, 5)
    for b in range(3):
        cpu = class_boxes_cpu(labels[b], 6)
        for k, cls in enumerate(classes.tolist()):
            want = _brute_box(labels[b], cls)
            n = len(want)
            assert table[b, k].tolist()[:n] == want, (b, cls)
            assert cpu[cls][:n] == want, (b, cls)


def test_class_boxes_of_uint8_and_non_contiguous_labels():
    labels = _labels(3)
    table = class_boxes(labels.to(torch.uint8), torch.arange(6), 6)
    assert torch.equal(table, class_boxes(labels, torch.arange(6), 6))
    flipped = labels[1].t()  # a non-contiguous view
    boxes = class_boxes_cpu(flipped, 6)
    for cls in range(6):
        want = _brute_box(flipped, cls)
        assert boxes[cls][: len(want)] == want


@pytest.mark.parametrize("host_resize", [False, True])
@pytest.mark.parametrize("p_resize", [0.3, 0.5, 0.75])
def test_cut_entry_is_the_box_of_the_opencv_resize_of_the_whole_crop(p_resize, host_resize):
    g = torch.Generator().manual_seed(0)
    image = torch.randn(3, 40, 52, generator=g)
    label = torch.zeros(40, 52, dtype=torch.int64)
    label[7:29, 11:40] = 4
    label[12:15, 20:26] = 0  # a hole: the mask is stored
    box = _brute_box(label, 4)
    entry = cut_entry(image, label, 4, box, p_resize, "float32", host_resize)
    hs, ws = int(40 * p_resize), int(52 * p_resize)
    assert (entry.crop_h, entry.crop_w) == (hs, ws)
    whole = cv2.resize(image.permute(1, 2, 0).numpy(), (ws, hs), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(
        (label == 4).numpy().astype(np.uint8), (ws, hs), interpolation=cv2.INTER_NEAREST
    )
    h, w = entry.patch.shape[1:]
    region = (slice(entry.top, entry.top + h), slice(entry.left, entry.left + w))
    assert mask[region].sum() == mask.sum()  # the box holds the whole shrunken object
    assert torch.equal(entry.mask, torch.from_numpy(mask[region]).bool())
    assert 4 * h * w >= hs * ws  # a large box: with host_resize, OpenCV computes it
    torch.testing.assert_close(entry.patch.permute(1, 2, 0), torch.from_numpy(whole[region]))
    assert int(entry.pixels) == int(mask.sum())
    if host_resize:
        assert torch.equal(entry.patch.permute(1, 2, 0), torch.from_numpy(whole[region]))


def test_uint8_storage_error_is_at_most_half_a_step():
    g = torch.Generator().manual_seed(1)
    patch = torch.randn(3, 17, 9, generator=g) * torch.tensor([1.0, 3.0, 0.1]).view(3, 1, 1)
    patch[2] = 0.25  # a constant channel is stored exactly
    q, lo, step = encode(patch, "uint8")
    assert q.dtype == torch.uint8 and lo.shape == step.shape == (3, 1, 1)
    values = q.to(torch.float32) * step + lo
    assert torch.all((values - patch).abs() <= step / 2 + 1e-6)
    assert torch.equal(values[2], patch[2])
    span = patch.reshape(3, -1)
    torch.testing.assert_close(step[:2].flatten(), (span.amax(1) - span.amin(1))[:2] / 255)
    empty, lo_e, step_e = encode(patch[:, :0], "uint8")
    assert empty.shape == (3, 0, 9) and lo_e.shape == step_e.shape == (3, 1, 1)


@pytest.mark.parametrize("storage", ["uint8", "float16", "float32"])
@pytest.mark.parametrize("p_resize", [1.0, 0.5])
@pytest.mark.parametrize("holes", [False, True])
@pytest.mark.parametrize("offset", [(0, 0), (3, 5), (-6, -9), (30, 40)])
def test_a_paste_writes_exactly_the_stored_values(storage, p_resize, holes, offset):
    g = torch.Generator().manual_seed(2)
    image = torch.randn(3, 36, 48, generator=g)
    label = torch.zeros(36, 48, dtype=torch.int64)
    label[5:25, 8:30] = 2
    if holes:
        label[9:12, 10:20] = 1
    entry = cut_entry(image, label, 2, _brute_box(label, 2), p_resize, storage)
    assert (entry.mask is None) is not holes
    dst = torch.full((3, 36, 48), -50.0)
    dst_lab = torch.full((36, 48), 7, dtype=torch.int64)
    pixels = paste(dst, dst_lab, entry, 2, *offset)
    written = dst_lab == 2
    assert int(pixels) == int(written.sum())
    assert torch.all(dst[:, ~written] == -50.0)
    # Where the entry landed: compare the written pixels with the stored values bit for bit.
    h, w = entry.patch.shape[1:]
    y0, x0 = offset[0] + entry.top, offset[1] + entry.left
    ya, yb, xa, xb = max(y0, 0), min(y0 + h, 36), max(x0, 0), min(x0 + w, 48)
    if ya >= yb or xa >= xb:
        assert pixels == 0
        return
    stored = entry.values().to(torch.float32)[:, ya - y0 : yb - y0, xa - x0 : xb - x0]
    mask = torch.ones(yb - ya, xb - xa, dtype=torch.bool)
    if entry.mask is not None:
        mask = entry.mask[ya - y0 : yb - y0, xa - x0 : xb - x0]
    assert torch.equal(written[ya:yb, xa:xb], mask)
    assert torch.equal(dst[:, ya:yb, xa:xb][:, mask], stored[:, mask])
