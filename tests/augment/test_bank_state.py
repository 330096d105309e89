"""Loading a T-Memory Bank state: every missing or malformed key is named in one error line."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from aucseg.augment import BatchTMemoryBank, TMemoryBank
from aucseg.errors import CheckpointError, InputError


def _filled(storage: str = "uint8", **kwargs) -> TMemoryBank:
    """A bank holding a partial-mask entry of class 2 and a full-box entry of class 3."""
    bank = TMemoryBank(6, [2, 3], memory_size=2, p_resize=0.5, seed=0, storage=storage, **kwargs)
    image = torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(0))
    label = torch.zeros(32, 32, dtype=torch.int64)
    label[2:20, 4:30] = 2
    label[5:8, 6:12] = 1
    label[22:30, 2:10] = 3
    bank(image, label)
    return bank


def _round_trip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_a_saved_state_loads_and_keeps_every_entry_exactly():
    bank = _filled()
    state = _round_trip(bank.state_dict())
    clone = TMemoryBank(6, [2, 3], memory_size=2, p_resize=0.5, storage="uint8")
    clone.load_state_dict(state)
    for cls in (2, 3):
        (a,), (b,) = bank._memory[cls], clone._memory[cls]
        assert torch.equal(a.values(), b.values())
        assert (a.mask is None) == (b.mask is None)
    assert bank._memory[3][0].mask is None and bank._memory[2][0].mask is not None
    assert clone.stats() == bank.stats()


def _drop(path: tuple):
    def edit(state: dict) -> None:
        target = state
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


def _set(path: tuple, value):
    def edit(state: dict) -> None:
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_drop(("version",)), r"key 'version' is missing"),
        (_drop(("storage",)), r"key 'storage' is missing"),
        (_drop(("rng", "state")), r"key 'rng\.state' is missing"),
        (_drop(("memory",)), r"key 'memory' is missing"),
        (_drop(("writes",)), r"key 'writes' is missing"),
        (_drop(("counts", "pastes")), r"key 'counts\.pastes' is missing"),
        (_drop(("memory", 0, 0, "patch")), r"key 'memory\[0\]\[0\]\.patch' is missing"),
        (_drop(("memory", 0, 0, "mask")), r"key 'memory\[0\]\[0\]\.mask' is missing"),
        (_drop(("memory", 1, 0, "step")), r"key 'memory\[1\]\[0\]\.step' is missing"),
        (_drop(("memory", 1, 0, "top")), r"key 'memory\[1\]\[0\]\.top' is missing"),
        (_set(("version",), 1), r"key 'version' is 1, expected 2"),
        (_set(("rng", "state"), torch.zeros(10, dtype=torch.int64)), r"'rng\.state'.*\(10,\)"),
        (_set(("memory", 0, 0, "patch"), torch.zeros(4, 4, dtype=torch.uint8)), r"memory\[0\]"),
        (_set(("memory", 0, 0, "patch"), torch.zeros(3, 4, 4)), r"'memory\[0\]\[0\]\.patch'"),
        (_set(("memory", 0, 0, "mask"), torch.zeros(2, 2, dtype=torch.bool)), r"\.mask'.*\(2, 2\)"),
        (_set(("memory", 0, 0, "lo"), torch.zeros(3)), r"'memory\[0\]\[0\]\.lo'.*\(3,\)"),
        (_set(("memory", 0, 0, "left"), -1), r"'memory\[0\]\[0\]\.left' is -1"),
        (_set(("memory", 0, 0, "pixels"), 2.5), r"'memory\[0\]\[0\]\.pixels' is a float"),
        (_set(("memory",), [[]]), r"key 'memory' has 1 items, expected 2"),
        (_set(("writes", 1), 0), r"key 'writes\[1\]' is 0, expected an int >= 1"),
        (_set(("memory", 0), [None, None, None]), r"'memory\[0\]' holds 3"),
        (_set(("memory", 0, 0), "entry"), r"'memory\[0\]\[0\]' is a str, expected dict"),
        (_set(("per_class",), [[2, 1, 0]]), r"'per_class\[0\]'"),
        (_set(("p_sample",), "high"), r"'p_sample' is a str"),
    ],
)
def test_bad_states_name_the_key(edit, match):
    state = _round_trip(_filled().state_dict())
    edit(state)
    bank = TMemoryBank(6, [2, 3], memory_size=2, p_resize=0.5, storage="uint8")
    with pytest.raises(CheckpointError, match=match) as info:
        bank.load_state_dict(state)
    assert isinstance(info.value, InputError) and "\n" not in str(info.value)
    assert bank.stats()["entries"] == 0  # nothing was half-loaded


def test_not_a_dict_and_other_parameters_are_rejected():
    bank = BatchTMemoryBank(6, [2, 3], memory_size=2, p_resize=0.5, storage="uint8")
    with pytest.raises(CheckpointError, match="is a list, expected the dict"):
        bank.load_state_dict([1, 2])
    state = _filled().state_dict()
    for kwargs, key in (({"p_resize": 0.4}, "p_resize"), ({"storage": "float16"}, "storage")):
        args = {"p_resize": 0.5, "storage": "uint8", **kwargs}
        with pytest.raises(CheckpointError, match=f"state has {key}="):
            BatchTMemoryBank(6, [2, 3], memory_size=2, **args).load_state_dict(state)


@pytest.mark.parametrize("storage", ["float16", "float32"])
def test_float_states_have_no_quantisation_tables(storage):
    state = _filled(storage).state_dict()
    bank = TMemoryBank(6, [2, 3], memory_size=2, p_resize=0.5, storage=storage)
    bank.load_state_dict(copy.deepcopy(state))
    bad = copy.deepcopy(state)
    bad["memory"][0][0]["lo"] = torch.zeros(3, 1, 1)
    with pytest.raises(CheckpointError, match=f"'memory\\[0\\]\\[0\\]\\.lo' is set, but {storage}"):
        bank.load_state_dict(bad)
