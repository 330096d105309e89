import pickle
import random

import numpy as np
import pytest
import torch

from aucseg.engine import checkpoint as ckpt
from aucseg.errors import CheckpointError


def test_round_trip_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = ckpt.make_checkpoint(
        model.state_dict(),
        7,
        optimizer_state=opt.state_dict(),
        memory_bank_state={"counts": torch.arange(3)},
        best_metric={"name": "mIoU", "value": 1.5, "iteration": 4},
        config={"data": {"root": "x", "crop_size": [4, 4]}},
    )
    path = ckpt.save_atomic(state, tmp_path / "checkpoints" / "last.pth")
    loaded = torch.load(path, weights_only=True)
    assert loaded["iteration"] == 7 and loaded["best_metric"]["value"] == 1.5
    assert torch.equal(loaded["model"]["weight"], model.weight.detach())
    assert loaded["config"]["data"]["crop_size"] == [4, 4]
    assert set(loaded) == {
        "model", "optimizer", "scheduler", "scaler", "iteration", "rng",
        "memory_bank", "best_metric", "config", "meta",
    }  # fmt: skip
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.pth"]


def test_a_failed_save_keeps_the_previous_file(tmp_path):
    path = ckpt.save_atomic({"iteration": 1}, tmp_path / "last.pth")
    with pytest.raises((AttributeError, pickle.PicklingError)):
        ckpt.save_atomic({"iteration": 2, "unpicklable": lambda: 0}, path)  # fails mid-write
    assert ckpt.load_checkpoint_file(path)["iteration"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_unusable_files_are_one_line_checkpoint_errors(tmp_path):
    good = ckpt.save_atomic(ckpt.make_checkpoint({"w": torch.ones(2)}, 3), tmp_path / "a.pth")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"truncated\.pth is not a readable checkpoint") as e:
        ckpt.load_checkpoint_file(truncated)
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match=r"is a directory; give the \.pth file"):
        ckpt.load_checkpoint_file(tmp_path)
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list, not a checkpoint dict"):
        ckpt.load_checkpoint_file(tmp_path / "list.pth")
    weights = {"state_dict": {"w": torch.ones(2)}}  # e.g. an official MMSegmentation file
    with pytest.raises(CheckpointError, match=r"no model, optimizer, iteration.*model.pretrained"):
        ckpt.check_training_checkpoint(weights, "official.pth")
    ckpt.check_training_checkpoint(ckpt.load_checkpoint_file(good) | {"optimizer": {}}, good)


def test_rng_state_restores_every_generator(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    ckpt.save_atomic({"rng": ckpt.get_rng_state()}, tmp_path / "r.pth")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.random(), np.random.rand(), torch.rand(5)
    ckpt.set_rng_state(ckpt.load_checkpoint_file(tmp_path / "r.pth")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_resolve_resume_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"last\.pth does not exist"):
        ckpt.resolve_resume_path(True, tmp_path)
    ckpt.save_atomic({"iteration": 0}, tmp_path / "checkpoints" / "last.pth")
    assert ckpt.resolve_resume_path(True, tmp_path).name == "last.pth"
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        ckpt.load_checkpoint_file(tmp_path / "none.pth")
