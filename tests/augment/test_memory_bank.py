"""T-Memory Bank: storage, replacement, sampling counts, paste geometry, placements, state."""

from __future__ import annotations

import inspect
import io
import json
import math
import random
import typing

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.overrides import TorchFunctionMode

from aucseg.augment import BatchTMemoryBank, MemoryBankTransform, TMemoryBank
from aucseg.errors import InputError

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
    ("storage", "atol"), [("float32", 1e-5), ("float16", 2e-3), ("uint8", 2e-2)]
)
@pytest.mark.parametrize(
    ("p_sample", "p_resize"), [(1.0, 1.0), (0.5, 0.5), (0.3, 0.4), (1.0, 0.75)]
)
def test_matches_official_algorithm_draw_for_draw(p_sample, p_resize, storage, atol):
    tail, memory_size = [1, 2, 3, 4, 5], 2
    bank = TMemoryBank(6, tail, memory_size, p_sample, p_resize, seed=7, storage=storage)
    rng, store = random.Random(7), {}
    for i in range(12):
        classes = tuple(sorted({0, *random.Random(i).sample(tail, 2)}))
        image, label = _scene(i, classes=classes)
        ref_img, ref_lab = _official_call(
            rng, store, image.clone(), label.clone(), tail, memory_size, p_sample, p_resize
        )
        out_img, out_lab = bank(image.clone(), label.clone())
        assert torch.equal(out_lab, ref_lab), f"sample {i}"
        torch.testing.assert_close(out_img, ref_img, atol=atol, rtol=0)


def test_storage_keeps_copies_of_the_box_only():
    image, label = _scene(0, classes=(0, 3))
    label[6, 6:9] = 3  # an irregular object: its mask is stored
    bank = TMemoryBank(6, [3], memory_size=5, seed=0, storage="float32")
    bank(image, label)
    (entry,) = bank._memory[3]
    rows, cols = (label == 3).nonzero().unbind(1)
    top, left = int(rows.min()), int(cols.min())
    h, w = int(rows.max()) - top + 1, int(cols.max()) - left + 1
    assert (entry.top, entry.left, tuple(entry.mask.shape)) == (top, left, (h, w))
    assert torch.equal(entry.mask, label[top : top + h, left : left + w] == 3)
    before = entry.patch.clone()
    assert torch.equal(before, image[:, top : top + h, left : left + w])
    image.fill_(100.0)  # later edits of the sample must not reach the memory
    assert torch.equal(entry.patch, before)
    assert bank.stats()["memory_bytes"] == 4 * 3 * h * w + h * w


def test_an_object_filling_its_box_stores_no_mask():
    image, label = _scene(0, classes=(0,))
    label[4:20, 5:30] = 3
    bank = TMemoryBank(6, [3], memory_size=1, storage="float16")
    bank(image, label)
    (entry,) = bank._memory[3]
    assert entry.mask is None and entry.pixels == 16 * 25
    assert bank.memory_bytes() == 2 * 3 * 16 * 25
    _, out_lab = bank(*_scene(1, classes=(0, 1)))
    assert int((out_lab == 3).sum()) == 16 * 25


def test_random_replacement_keeps_memory_size_and_uses_randint():
    bank = TMemoryBank(6, [3], memory_size=2, seed=11, storage="float32")
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
    bank = TMemoryBank(6, [3], memory_size=1, seed=0, storage="float32")
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
    with pytest.raises(InputError, match="memory_classes"):
        TMemoryBank(6, [1, 3], memory_size=2).load_state_dict(state)
    with pytest.raises(InputError, match="memory_size"):
        TMemoryBank(6, [1, 2], memory_size=3).load_state_dict(state)
    with pytest.raises(InputError, match="storage='float16' but this bank has 'uint8'"):
        TMemoryBank(6, [1, 2], memory_size=2, storage="uint8").load_state_dict(state)
    with pytest.raises(InputError, match="update"):
        TMemoryBank(6, [1, 2], memory_size=2, update="fifo").load_state_dict(state)


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
        ({"num_classes": 0}, "num_classes"),
        ({"update": "newest"}, "update must be one of 'random', 'fifo', 'lifo', got 'newest'"),
        ({"classes": "head"}, "classes must be one of 'tail', 'all'"),
        ({"storage": "bfloat16"}, "storage must be one of 'uint8', 'float16', 'float32'"),
        ({"tail_classes": None}, "tail_classes is None with classes='tail'.*classes='all'"),
    ],
)
def test_invalid_parameters_are_rejected(kwargs, match):
    args = {"num_classes": 6, "tail_classes": [1], **kwargs}
    for bank_type in (TMemoryBank, BatchTMemoryBank):
        with pytest.raises(InputError, match=match):
            bank_type(**args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"memory_size": 2.0}, "memory_size"),
        ({"p_sample": "1"}, "p_sample"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_wrong_python_types_are_type_errors(kwargs, match):
    with pytest.raises(TypeError, match=match):
        TMemoryBank(6, [1], **kwargs)


def test_numpy_integers_are_accepted_as_ids():
    bank = TMemoryBank(np.int64(6), np.array([3, 1]), memory_size=np.int32(2), seed=np.int64(1))
    assert bank.tail_classes == [3, 1] and all(type(c) is int for c in bank.tail_classes)
    assert (bank.num_classes, bank.memory_size, bank.seed) == (6, 2, 1)


def test_invalid_inputs_are_rejected():
    bank = TMemoryBank(6, [1])
    image, label = _scene(0)
    with pytest.raises(InputError, match="same H, W"):
        bank(image, label[:-1])
    with pytest.raises(TypeError, match="integer"):
        bank(image, label.float())
    with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
        BatchTMemoryBank(6, [1])(image, label)


@pytest.mark.parametrize(("storage", "size"), [("float32", 4), ("float16", 2), ("uint8", 1)])
def test_storage_precision_sets_the_patch_bytes(storage, size):
    image, label = _scene(0, classes=(0, 3))
    bank = TMemoryBank(6, [3], memory_size=1, storage=storage)
    bank(image.clone(), label.clone())
    (entry,) = bank._memory[3]
    extra = 0 if entry.mask is None else entry.mask.numel()
    tables = 2 * 3 * 4 if storage == "uint8" else 0  # lo and step per channel
    assert bank.memory_bytes() == size * entry.patch.numel() + extra + tables


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batch_mode_on_cuda_matches_cpu():
    scenes = [_scene(i, classes=(0, 2, 3) if i < 3 else (0, 1)) for i in range(6)]
    imgs = torch.stack([s[0] for s in scenes])
    labs = torch.stack([s[1] for s in scenes])
    results = []
    for device in ("cpu", "cuda"):
        bank = BatchTMemoryBank(6, [2, 3], memory_size=2, p_resize=0.5, seed=0, storage="float32")
        bank(imgs[:3].clone().to(device), labs[:3].clone().to(device))
        assert bank.stats()["stored"] == 6
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


def _expected_slots(update: str, tags: list[int], memory_size: int, seed: int) -> list[int]:
    """Slots after storing ``tags`` in order, replacing by age (fifo/lifo) or randint (random)."""
    rng = random.Random(seed)
    slots: list[int] = []
    for tag in tags:
        if len(slots) < memory_size:
            slots.append(tag)
            continue
        ages = [tags.index(t) for t in slots]  # tags are distinct: position = time stored
        if update == "random":
            slot = rng.randint(0, memory_size - 1)
        else:
            slot = ages.index(min(ages) if update == "fifo" else max(ages))
        slots[slot] = tag
    return slots


def _tagged(tag: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A sample holding class 3 whose image carries ``tag`` in every pixel of channel 0."""
    image, label = _scene(tag, classes=(0, 3))
    image[0] = float(tag)
    return image, label


@pytest.mark.parametrize("bank_type", [TMemoryBank, BatchTMemoryBank])
@pytest.mark.parametrize("update", ["random", "fifo", "lifo"])
def test_update_rule_replaces_in_the_exact_order(bank_type, update):
    bank = bank_type(6, [3], memory_size=3, seed=4, update=update)
    tags = list(range(9))
    for tag in tags:
        image, label = _tagged(tag)
        if bank_type is BatchTMemoryBank:
            image, label = image[None], label[None]
        bank(image, label)
    stored = [int(e.values()[0, 0, 0]) for e in bank._memory[3]]
    assert stored == _expected_slots(update, tags, 3, seed=4)
    if update == "fifo":
        assert stored == [6, 7, 8]
    if update == "lifo":
        assert stored == [0, 1, 8]
    assert bank.stats()["stored"] == 9


@pytest.mark.parametrize("update", ["fifo", "lifo"])
def test_update_rule_and_write_count_survive_the_state(update):
    bank = BatchTMemoryBank(6, [3], memory_size=2, update=update)
    for tag in range(3):
        bank(*(t[None] for t in _tagged(tag)))
    clone = BatchTMemoryBank(6, [3], memory_size=2, update=update)
    clone.load_state_dict(bank.state_dict())
    for b in (bank, clone):
        for tag in (3, 4):
            b(*(t[None] for t in _tagged(tag)))
    tags = [[int(e.values()[0, 0, 0]) for e in b._memory[3]] for b in (bank, clone)]
    assert tags[0] == tags[1] == _expected_slots(update, list(range(5)), 2, seed=0)


@pytest.mark.parametrize("bank_type", [TMemoryBank, BatchTMemoryBank])
def test_all_classes_bank_stores_and_pastes_head_classes_too(bank_type):
    bank = bank_type(6, None, memory_size=2, classes="all", seed=0, storage="float32")
    assert bank.memory_classes == list(range(6)) and bank.tail_classes is None
    src_img, src_lab = _scene(0, classes=(0, 1, 2))
    dst_img, dst_lab = _scene(1, classes=(3, 4))
    dst_lab[dst_lab == 0] = 5  # the destination lacks 0, 1 and 2
    if bank_type is BatchTMemoryBank:
        src_img, src_lab, dst_img, dst_lab = (t[None] for t in (src_img, src_lab, dst_img, dst_lab))
    bank(src_img, src_lab)
    assert bank.stats()["stored"] == 3  # 0 (background), 1 and 2
    bank.reset_stats()
    _, out_lab = bank(dst_img.clone(), dst_lab.clone())
    assert set(bank.stats()["per_class_pastes"]) == {0, 1, 2}
    assert {0, 1, 2} <= set(out_lab.unique().tolist())
    state = bank.state_dict()
    assert state["classes"] == "all" and state["memory_classes"] == list(range(6))
    # With classes='all' a tail list is ignored: the bank and its state are the same.
    same = bank_type(6, [4], memory_size=2, classes="all", storage="float32")
    same.load_state_dict(state)
    assert same.stats()["entries"] == bank.stats()["entries"]


@pytest.mark.parametrize(
    ("bank_type", "image_shape", "label_shape"),
    [
        (TMemoryBank, (3, 0, 8), (0, 8)),
        (TMemoryBank, (3, 8, 0), (8, 0)),
        (BatchTMemoryBank, (0, 3, 8, 8), (0, 8, 8)),
        (BatchTMemoryBank, (2, 3, 0, 8), (2, 0, 8)),
    ],
)
def test_empty_inputs_raise_naming_the_shape(bank_type, image_shape, label_shape):
    bank = bank_type(6, [1])
    image, label = torch.zeros(image_shape), torch.zeros(label_shape, dtype=torch.int64)
    shape = ", ".join(map(str, image_shape))
    with pytest.raises(InputError, match=rf"empty .*image \({shape}\)"):
        bank(image, label)
    assert bank.stats()["samples"] == 0


def test_constructor_annotations_are_plain_with_defaults():
    pydantic = pytest.importorskip("pydantic")
    for bank_type in (TMemoryBank, BatchTMemoryBank):
        params = inspect.signature(bank_type).parameters
        hints = typing.get_type_hints(bank_type.__init__)
        fields = {}
        for name, param in params.items():
            if name == "num_classes":
                assert param.default is inspect.Parameter.empty
                fields[name] = (hints[name], ...)
                continue
            assert param.default is not inspect.Parameter.empty, name
            fields[name] = (hints[name], param.default)
        model = pydantic.create_model("BankOptions", **fields)
        defaults = model(num_classes=150, tail_classes=[1, 2]).model_dump()
        assert defaults["update"] == "random" and defaults["classes"] == "tail"
        assert defaults["storage"] == "float16"
        bank_type(**model(num_classes=6, classes="all", update="lifo").model_dump())
        with pytest.raises(pydantic.ValidationError):
            model(num_classes=6, update="newest")


_SYNCS = {
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.__bool__,
    torch.Tensor.__int__,
    torch.Tensor.__float__,
    torch.Tensor.__index__,
    torch.Tensor.cpu,
    torch.Tensor.numpy,
    torch.Tensor.nonzero,
    torch.nonzero,
    torch.Tensor.argwhere,
    torch.argwhere,
    torch.unique,
    torch.Tensor.unique,
    torch.masked_select,
    torch.Tensor.masked_select,
}


class _CountSyncs(TorchFunctionMode):
    """Counts the tensor calls that read a device value back to the host (on a GPU, a sync):
    scalar reads, ``tolist``/``cpu``/``numpy``, data-dependent shapes (``nonzero``, boolean
    indexing, ``unique``) and copies to the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _SYNCS or self._bool_index(func, args) or self._to_cpu(func, args, kwargs):
            self.calls.append(getattr(func, "__name__", repr(func)))
        return func(*args, **kwargs)

    @staticmethod
    def _bool_index(func, args) -> bool:
        if func not in (torch.Tensor.__getitem__, torch.Tensor.__setitem__):
            return False
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index)

    @staticmethod
    def _to_cpu(func, args, kwargs) -> bool:
        if func is not torch.Tensor.to:
            return False
        targets = [*args[1:], kwargs.get("device")]
        return any(str(t) == "cpu" for t in targets if isinstance(t, str | torch.device))


def test_sync_counter_sees_the_usual_syncs():
    t = torch.arange(4)
    with _CountSyncs() as counter:
        bool(t[0])
        t.sum().item()
        t[t > 1]
        t.nonzero()
        t.to("cpu")
        t.add(1)
    assert counter.calls == ["__bool__", "item", "__getitem__", "nonzero", "to"]


@pytest.mark.parametrize("storage", ["uint8", "float16", "float32"])
@pytest.mark.parametrize("p_resize", [1.0, 0.5])
def test_batch_bank_syncs_once_per_call_whatever_the_number_of_entries(storage, p_resize):
    tail = [1, 2, 3, 4, 5]
    bank = BatchTMemoryBank(6, tail, memory_size=3, p_resize=p_resize, seed=0, storage=storage)
    full = [_scene(i, h=40, w=40, classes=(0, 1, 2, 3, 4, 5)) for i in range(4)]
    calls = [
        [_scene(9, classes=(0, 1))],  # stores 1, nothing in memory yet to paste
        full,  # stores 20 entries (partial masks, full boxes), pastes none (all present)
        [_scene(10, h=24, w=28, classes=(0,)) for _ in range(3)],  # 5 pastes, clipped ones
        [_scene(11, classes=(0, 2))],  # stores 1, pastes 4
    ]
    per_call, work = [], []
    for scenes in calls:
        images = torch.stack([s[0] for s in scenes])
        labels = torch.stack([s[1] for s in scenes])
        before = bank.stats()
        with _CountSyncs() as counter:
            bank(images, labels)
        after = bank.stats()
        per_call.append(counter.calls)
        work.append((after["stored"] - before["stored"], after["pastes"] - before["pastes"]))
    assert work == [(1, 0), (20, 0), (0, 5), (1, 4)]
    assert per_call == [["tolist"]] * 4  # one host read per call, independent of the entries
    with _CountSyncs() as counter:
        bank.stats()
    assert len(counter.calls) <= 1  # the pasted-pixel count, when it is a device tensor


def test_a_bank_without_memory_never_syncs():
    bank = BatchTMemoryBank(6, [1, 2], memory_size=0)
    images, labels = torch.stack([_scene(0)[0]] * 2), torch.stack([_scene(0)[1]] * 2)
    with _CountSyncs() as counter:
        bank(images, labels)
    assert counter.calls == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batch_bank_on_cuda_syncs_once_per_call():
    bank = BatchTMemoryBank(6, [1, 2, 3, 4, 5], memory_size=3, p_resize=0.5, seed=0)
    scenes = [_scene(i, classes=(0, 1, 2, 3, 4, 5) if i < 4 else (0,)) for i in range(8)]
    images = torch.stack([s[0] for s in scenes]).cuda()
    labels = torch.stack([s[1] for s in scenes]).cuda()
    bank(images[:4].clone(), labels[:4].clone())  # warm-up: tables, caches
    torch.cuda.synchronize()
    for part in (slice(0, 4), slice(4, 8)):
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with pytest.warns(UserWarning, match="synchroniz") as record:
                bank(images[part].clone(), labels[part].clone())
        finally:
            torch.cuda.set_sync_debug_mode("default")
        assert len([w for w in record if "synchroniz" in str(w.message)]) == 1
