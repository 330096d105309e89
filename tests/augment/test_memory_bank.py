"""T-Memory Bank: storage, replacement, sampling counts, paste geometry, placements, state."""

from __future__ import annotations

import io
import math
import random

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aucseg.augment import BatchTMemoryBank, MemoryBankTransform, TMemoryBank
from aucseg.augment.memory_bank import _class_rows

IGNORE = 255


def _scene(seed: int, h: int = 32, w: int = 40, classes: tuple[int, ...] = (0, 1, 2, 3, 4, 5)):
    """Random image and a label of rectangles of the given classes (some ignore pixels)."""
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(3, h, w, generator=g)
    label = torch.zeros(h, w, dtype=torch.int64)
    for c in classes:
        y = int(torch.randint(0, h - 6, (1,), generator=g))
        x = int(torch.randint(0, w - 6, (1,), generator=g))
        dy, dx = (int(v) for v in torch.randint(2, 7, (2,), generator=g))
        label[y : y + dy, x : x + dx] = c
    label[:2, :3] = IGNORE
    return image, label


def _official_call(rng, store, image, label, tail, memory_size, p_sample, p_resize):
    """Literal per-sample algorithm of the official transform (with copies), on whole crops."""
    present = sorted(set(label.unique().tolist()) - {IGNORE})
    tail_present = [c for c in present if c in tail]
    missing = [c for c in tail if c not in present]
    for c in tail_present:
        item = (image.clone(), label == c)
        slots = store.setdefault(c, [])
        if len(slots) < memory_size:
            slots.append(item)
        else:
            slots[rng.randint(0, memory_size - 1)] = item
    if not missing:
        return image, label
    height, width = label.shape
    for c in rng.sample(missing, math.ceil(len(missing) * p_sample)):
        if not store.get(c):
            continue
        img_s, mask = rng.choice(store[c])
        hs, ws = int(height * p_resize), int(width * p_resize)
        img_r = cv2.resize(img_s.permute(1, 2, 0).numpy(), (ws, hs), interpolation=cv2.INTER_LINEAR)
        mask_u8 = mask.numpy().astype(np.uint8)
        mask_r = cv2.resize(mask_u8, (ws, hs), interpolation=cv2.INTER_NEAREST)
        oy, ox = rng.randint(0, height - hs), rng.randint(0, width - ws)
        m = torch.from_numpy(mask_r).bool()
        region = image[:, oy : oy + hs, ox : ox + ws]
        region.copy_(torch.where(m, torch.from_numpy(img_r).permute(2, 0, 1), region))
        label[oy : oy + hs, ox : ox + ws][m] = c
    return image, label


@pytest.mark.parametrize(
    ("p_sample", "p_resize"), [(1.0, 1.0), (0.5, 0.5), (0.3, 0.4), (1.0, 0.75)]
)
def test_matches_official_algorithm_draw_for_draw(p_sample, p_resize):
    tail, memory_size = [1, 2, 3, 4, 5], 2
    bank = TMemoryBank(6, tail, memory_size, p_sample, p_resize, seed=7)
    rng, store = random.Random(7), {}
    for i in range(12):
        classes = tuple(sorted({0, *random.Random(i).sample(tail, 2)}))
        image, label = _scene(i, classes=classes)
        ref_img, ref_lab = _official_call(
            rng, store, image.clone(), label.clone(), tail, memory_size, p_sample, p_resize
        )
        out_img, out_lab = bank(image.clone(), label.clone())
        assert torch.equal(out_lab, ref_lab), f"sample {i}"
        torch.testing.assert_close(out_img, ref_img, atol=1e-5, rtol=0)


def test_storage_keeps_copies_of_the_box_only():
    image, label = _scene(0, classes=(0, 3))
    bank = TMemoryBank(6, [3], memory_size=5, seed=0)
    bank(image, label)
    (entry,) = bank._memory[3]
    rows, cols = (label == 3).nonzero().unbind(1)
    top, left = int(rows.min()), int(cols.min())
    h, w = int(rows.max()) - top + 1, int(cols.max()) - left + 1
    assert (entry.top, entry.left, tuple(entry.mask.shape)) == (top, left, (h, w))
    assert torch.equal(entry.mask, label[top : top + h, left : left + w] == 3)
    before = entry.patch.clone()
    torch.testing.assert_close(before, image[:, top : top + h, left : left + w])
    image.fill_(100.0)  # later edits of the sample must not reach the memory
    assert torch.equal(entry.patch, before)
    assert bank.stats()["memory_bytes"] == 4 * 3 * h * w + h * w


def test_random_replacement_keeps_memory_size_and_uses_randint():
    bank = TMemoryBank(6, [3], memory_size=2, seed=11)
    rng = random.Random(11)
    expected: list[int] = []
    for i in range(6):
        image, label = _scene(i, classes=(0, 3))
        image[0] = float(i)  # tag each sample
        bank(image, label)
        if len(expected) < 2:
            expected.append(i)
        else:
            expected[rng.randint(0, 1)] = i
    assert [int(e.patch[0, 0, 0]) for e in bank._memory[3]] == expected
    assert bank.stats()["stored"] == 6 and bank.stats()["entries"] == 2


@pytest.mark.parametrize(("p_sample", "expected"), [(1.0, 4), (0.5, 2), (0.3, 2), (0.0, 0)])
def test_number_of_pastes_is_ceil_of_missing(p_sample, expected):
    tail = [1, 2, 3, 4]
    bank = TMemoryBank(6, tail, memory_size=3, p_sample=p_sample, seed=0)
    bank(*_scene(0, classes=(0, 1, 2, 3, 4)))  # fills every tail class
    bank.reset_stats()
    bank(*_scene(1, classes=(0, 5)))  # all four tail classes missing
    stats = bank.stats()
    assert stats["pastes"] == expected
    assert sum(stats["per_class_pastes"].values()) == expected
    assert stats["samples"] == 1


def test_paste_geometry_only_pasted_pixels_change():
    src_img, src_lab = _scene(0, classes=(0, 3))
    bank = TMemoryBank(6, [3], memory_size=1, seed=0)
    bank(src_img.clone(), src_lab.clone())
    dst_img, dst_lab = _scene(1, classes=(0, 1))
    dst_lab[:, -4:] = IGNORE  # padding is overwritten too
    out_img, out_lab = bank(dst_img.clone(), dst_lab.clone())
    pasted = src_lab == 3  # p_resize = 1: the object lands where it was
    assert torch.equal(out_lab[pasted], torch.full_like(out_lab[pasted], 3))
    assert torch.equal(out_img[:, pasted], src_img[:, pasted])
    assert torch.equal(out_lab[~pasted], dst_lab[~pasted])
    assert torch.equal(out_img[:, ~pasted], dst_img[:, ~pasted])
    assert bank.stats()["pixels_pasted"] == int(pasted.sum())


def test_shrunken_paste_lies_inside_and_carries_its_class():
    src_img, src_lab = _scene(2, h=48, w=48, classes=(0,))
    src_lab[10:30, 12:40] = 3
    bank = TMemoryBank(6, [3], memory_size=1, p_resize=0.5, seed=3)
    bank(src_img, src_lab)
    for seed in range(5):
        dst_img, dst_lab = _scene(10 + seed, h=48, w=48, classes=(0, 1))
        out_img, out_lab = bank(dst_img.clone(), dst_lab.clone())
        changed = out_lab != dst_lab
        assert torch.all(out_lab[changed] == 3)
        assert int((out_lab == 3).sum()) == 10 * 14  # 20x28 box shrunk by 2, fully inside
        assert torch.equal(out_img[:, ~changed], dst_img[:, ~changed])


def test_memory_size_zero_and_no_tail_classes_are_no_ops():
    for bank in (TMemoryBank(6, [3], memory_size=0), TMemoryBank(6, [], memory_size=5)):
        for i in range(3):
            image, label = _scene(i, classes=(0, 3) if i == 0 else (0, 1))
            out_img, out_lab = bank(image.clone(), label.clone())
            assert torch.equal(out_img, image) and torch.equal(out_lab, label)
        assert bank.stats()["pastes"] == 0 and bank.stats()["entries"] == 0


def test_class_rows_match_brute_force():
    labels = torch.stack([_scene(i, classes=(0, 1, 2, 4))[1] for i in range(3)])
    labels[1, 5, 5] = -1  # negative values are not classes
    present, rows = _class_rows(labels, 6)
    for b in range(3):
        for c in range(6):
            where = (labels[b] == c).nonzero()[:, 0]
            assert bool(present[b, c]) == (where.numel() > 0)
            if where.numel():
                assert rows[b, c].tolist() == [int(where.min()), int(where.max())]


def test_state_round_trip_through_torch_save_continues_identically():
    bank = TMemoryBank(6, [1, 2, 3], memory_size=2, p_sample=0.7, p_resize=0.6, seed=5)
    for i in range(5):
        bank(*_scene(i, classes=(0, 1, 2, 3)[: 2 + i % 3]))
    buf = io.BytesIO()
    torch.save(bank.state_dict(), buf)
    buf.seek(0)
    clone = TMemoryBank(6, [1, 2, 3], memory_size=2, p_sample=0.7, p_resize=0.6, seed=99)
    clone.load_state_dict(torch.load(buf, weights_only=True))
    assert clone.stats() == bank.stats()
    for i in range(5, 9):
        a = bank(*_scene(i, classes=(0, 5)))
        b = clone(*_scene(i, classes=(0, 5)))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_load_state_rejects_other_parameters():
    state = TMemoryBank(6, [1, 2], memory_size=2).state_dict()
    with pytest.raises(ValueError, match="tail_classes"):
        TMemoryBank(6, [1, 3], memory_size=2).load_state_dict(state)
    with pytest.raises(ValueError, match="memory_size"):
        TMemoryBank(6, [1, 2], memory_size=3).load_state_dict(state)


def test_batch_mode_pastes_only_classes_missing_from_the_whole_batch():
    bank = BatchTMemoryBank(6, [1, 2, 3], memory_size=2, seed=0)
    img0, lab0 = _scene(0, classes=(0, 1, 2, 3))
    bank(img0[None].clone(), lab0[None].clone())
    bank.reset_stats()
    imgs = torch.stack([_scene(1, classes=(0, 1))[0], _scene(2, classes=(0, 4))[0]])
    labs = torch.stack([_scene(1, classes=(0, 1))[1], _scene(2, classes=(0, 4))[1]])
    out_imgs, out_labs = bank(imgs.clone(), labs.clone())
    stats = bank.stats()
    assert stats["samples"] == 2
    assert set(stats["per_class_pastes"]) == {2, 3}  # 1 is present in sample 0
    changed = out_labs != labs
    assert set(out_labs[changed].tolist()) <= {2, 3}
    assert torch.equal(out_imgs[:, :, ~changed.any(0)], imgs[:, :, ~changed.any(0)])


def test_batch_mode_state_round_trip_and_per_sample_equivalence():
    bank = BatchTMemoryBank(6, [2, 3], memory_size=3, p_resize=0.5, seed=1)
    for i in range(4):
        img, lab = _scene(i, classes=(0, 2, 3))
        bank(img[None], lab[None])
    buf = io.BytesIO()
    torch.save(bank.state_dict(), buf)
    buf.seek(0)
    clone = BatchTMemoryBank(6, [2, 3], memory_size=3, p_resize=0.5)
    clone.load_state_dict(torch.load(buf, weights_only=True))
    scenes = [_scene(9 + i, classes=(0, 1)) for i in range(3)]
    imgs = torch.stack([s[0] for s in scenes])
    labs = torch.stack([s[1] for s in scenes])
    a = bank(imgs.clone(), labs.clone())
    b = clone(imgs.clone(), labs.clone())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert bank.stats()["pastes"] >= 2


def test_transform_wraps_a_sample_dict():
    bank = TMemoryBank(6, [3], memory_size=1, seed=0)
    transform = MemoryBankTransform(bank)
    image, label = _scene(0, classes=(0, 3))
    out = transform({"image": image, "label": label, "name": "a"})
    assert out["name"] == "a" and out["label"] is label
    out = transform({"image": _scene(1, classes=(0,))[0], "label": _scene(1, classes=(0,))[1]})
    assert int((out["label"] == 3).sum()) == int((label == 3).sum())
    with pytest.raises(TypeError, match="'image' and 'label'"):
        transform({"img": image})
    with pytest.raises(TypeError, match="TMemoryBank"):
        MemoryBankTransform(BatchTMemoryBank(6, [3]))


class _Scenes(torch.utils.data.Dataset):
    def __init__(self, transform):
        self.transform = transform

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i):
        image, label = _scene(i, classes=(0, 3) if i % 2 == 0 else (0, 1))
        return self.transform({"image": image, "label": label})


def test_dataloader_workers_get_their_own_random_streams():
    bank = TMemoryBank(6, [3], memory_size=5, seed=0)
    loader = torch.utils.data.DataLoader(
        _Scenes(MemoryBankTransform(bank)), batch_size=2, num_workers=2
    )
    batches = list(loader)
    assert len(batches) == 4
    # Odd samples lack class 3; a worker that has seen an even sample pastes it.
    assert any(bool((b["label"][1] == 3).any()) for b in batches)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tail_classes": [6]}, "tail_classes"),
        ({"tail_classes": [1, 1]}, "tail_classes"),
        ({"memory_size": -1}, "memory_size"),
        ({"p_sample": 1.5}, "p_sample"),
        ({"p_resize": 0.0}, "p_resize"),
    ],
)
def test_invalid_parameters_are_rejected(kwargs, match):
    args = {"num_classes": 6, "tail_classes": [1], **kwargs}
    with pytest.raises(ValueError, match=match):
        TMemoryBank(**args)


def test_invalid_inputs_are_rejected():
    bank = TMemoryBank(6, [1])
    image, label = _scene(0)
    with pytest.raises(ValueError, match="same H, W"):
        bank(image, label[:-1])
    with pytest.raises(TypeError, match="integer"):
        bank(image, label.float())
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        BatchTMemoryBank(6, [1])(image, label)


def test_half_precision_storage_halves_patch_memory():
    image, label = _scene(0, classes=(0, 3))
    exact = TMemoryBank(6, [3], memory_size=1)
    half = TMemoryBank(6, [3], memory_size=1, storage_dtype=torch.float16)
    exact(image.clone(), label.clone())
    half(image.clone(), label.clone())
    (e32,), (e16,) = exact._memory[3], half._memory[3]
    assert e16.patch.dtype == torch.float16
    assert e16.patch.shape == e32.patch.shape
    assert exact.memory_bytes() - half.memory_bytes() == 2 * e32.patch.numel()
    dst = _scene(1, classes=(0,))
    out = half(dst[0].clone(), dst[1].clone())[0]
    assert out.dtype == torch.float32
    torch.testing.assert_close(out[:, label == 3], image[:, label == 3], atol=2e-3, rtol=0)
    with pytest.raises(TypeError, match="storage_dtype"):
        TMemoryBank(6, [3], storage_dtype=torch.int64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batch_mode_on_cuda_matches_cpu():
    scenes = [_scene(i, classes=(0, 2, 3) if i < 3 else (0, 1)) for i in range(6)]
    imgs = torch.stack([s[0] for s in scenes])
    labs = torch.stack([s[1] for s in scenes])
    results = []
    for device in ("cpu", "cuda"):
        bank = BatchTMemoryBank(6, [2, 3], memory_size=2, p_resize=0.5, seed=0)
        bank(imgs[:3].clone().to(device), labs[:3].clone().to(device))
        out = bank(imgs[3:].clone().to(device), labs[3:].clone().to(device))
        results.append([t.cpu() for t in out])
    assert torch.equal(results[0][1], results[1][1])
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-5, rtol=0)


def test_stored_crop_larger_than_current_crop_is_pasted_clipped():
    src_img, src_lab = _scene(0, h=40, w=40, classes=(0,))
    src_lab[5:35, 5:35] = 3
    bank = TMemoryBank(6, [3], memory_size=1, seed=0)
    bank(src_img, src_lab)
    dst_img, dst_lab = _scene(1, h=20, w=24, classes=(0, 1))
    out_img, out_lab = bank(dst_img.clone(), dst_lab.clone())
    changed = out_lab != dst_lab
    assert changed.any() and torch.all(out_lab[changed] == 3)
    assert bank.stats()["pixels_pasted"] == int((out_lab == 3).sum())
    assert torch.equal(out_img[:, ~changed], dst_img[:, ~changed])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    p_sample=st.sampled_from([0.2, 0.5, 1.0]),
    p_resize=st.sampled_from([0.3, 0.5, 1.0]),
    memory_size=st.integers(0, 3),
)
def test_property_only_missing_tail_classes_are_pasted(seed, p_sample, p_resize, memory_size):
    tail = [2, 3, 4, 5]
    bank = TMemoryBank(6, tail, memory_size, p_sample, p_resize, seed=seed)
    rng = random.Random(seed)
    for i in range(4):
        classes = (0, *rng.sample([1, *tail], rng.randint(0, 3)))
        image, label = _scene(seed + i, classes=classes)
        present = set(label.unique().tolist())
        stored_before = bank.stats()["stored"]
        out_img, out_lab = bank(image.clone(), label.clone())
        # stored: exactly the tail classes present before pasting (pasted ones are not stored)
        expected = len(present & set(tail)) if memory_size else 0
        assert bank.stats()["stored"] - stored_before == expected
        changed = out_lab != label
        assert set(out_lab[changed].tolist()) <= set(tail) - present
        assert torch.equal(out_img[:, ~changed], image[:, ~changed])
        assert all(len(slots) <= memory_size for slots in bank._memory.values())


def test_bank_from_stats_file(tmp_path):
    import json

    stats = {
        "num_classes": 6,
        "classes": list("abcdef"),
        "pixel_counts": [60, 50, 40, 3, 2, 1],
        "image_counts": [1] * 6,
        "rule": {},
        "groups": {"head": [0], "middle": [1, 2], "tail": [3, 4, 5]},
    }
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(stats))
    bank = BatchTMemoryBank.from_stats_file(path, memory_size=2, p_resize=0.5)
    assert isinstance(bank, BatchTMemoryBank)
    assert (bank.num_classes, bank.tail_classes, bank.memory_size) == (6, [3, 4, 5], 2)
