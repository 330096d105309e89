"""Config -> objects: the builders on real models, losses, banks, data and hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aucseg.augment import BatchTMemoryBank, MemoryBankTransform
from aucseg.config import config_from_dict
from aucseg.data import write_label
from aucseg.engine import build
from aucseg.engine.hooks import (
    BankStatsHook,
    CheckpointHook,
    EvalHook,
    InterruptHook,
    LoggerHook,
    LRSchedulerHook,
)
from aucseg.engine.predict import write_rgb
from aucseg.engine.schedule import poly_warmup_lr
from aucseg.errors import InputError
from aucseg.losses import CrossEntropyLoss, SquareAUCLoss


def cfg_with(**sections):
    base = {"model": {"name": "segnext_tiny", "num_classes": 19}, "data": {"dataset": "cityscapes"}}
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return config_from_dict(base)


def test_losses_get_their_own_options_and_the_engine_values():
    terms = [
        {"name": "square_auc", "weight": 4.0, "gamma": 0.5},
        {"name": "cross_entropy", "avg_non_ignore": True},
    ]
    cfg = cfg_with(loss={"terms": terms, "ignore_index": 250})
    (auc, ce), notes = build.build_losses(cfg, distributed=False)
    assert isinstance(auc, SquareAUCLoss) and isinstance(ce, CrossEntropyLoss)
    assert (auc.num_classes, auc.loss_weight, auc.gamma, auc.ignore_index) == (19, 4.0, 0.5, 250)
    assert not auc.sync and ce.avg_non_ignore and ce.ignore_index == 250 and notes == []


def test_under_ddp_exact_losses_sync_and_the_others_say_so():
    terms = [{"name": "square_auc"}, {"name": "hinge_auc"}, {"name": "cross_entropy"}]
    losses, notes = build.build_losses(cfg_with(loss={"terms": terms}), distributed=True)
    auc, hinge, _ = losses
    assert auc.sync and not hinge.sync  # the pairwise hinge has no exact distributed form
    assert [n.split(" has no")[0] for n in notes] == [
        "loss.terms.1 (hinge_auc)", "loss.terms.2 (cross_entropy)"
    ]  # fmt: skip


def test_model_from_config_carries_its_options():
    model = build.build_model_from_config(cfg_with(model={"dropout": 0.0})).eval()
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 19, 32, 32)
    assert not any(isinstance(m, torch.nn.Dropout2d) for m in model.modules())  # dropout 0
    default = build.build_model_from_config(cfg_with())
    assert [m.p for m in default.modules() if isinstance(m, torch.nn.Dropout2d)] == [0.1]
    with pytest.raises(FileNotFoundError, match=r"mscan_t\.pth.*SegNeXt"):
        build.build_model_from_config(cfg_with(model={"pretrained": "/none/mscan_t.pth"}))


def test_optimizer_and_scheduler_from_config():
    cfg = cfg_with(
        optimizer={"lr": 1e-3, "weight_decay": 0.05},
        schedule={"max_iters": 100, "warmup_iters": 10, "warmup_ratio": 0.1},
    )
    model = build.build_model_from_config(cfg)
    opt = build.build_optimizer(cfg, model)
    lrs = build.build_scheduler(cfg, opt).step_to(5)
    expected = poly_warmup_lr(5, 1e-3, 100, warmup_iters=10, warmup_ratio=0.1)
    by_group = dict(zip([g["group"] for g in opt.param_groups], lrs, strict=True))
    assert by_group["backbone"] == pytest.approx(expected)
    assert by_group["head"] == pytest.approx(10 * expected)
    assert {g["weight_decay"] for g in opt.param_groups} == {0.0, 0.05}


def test_memory_bank_placements_and_tail_lists():
    assert build.build_memory_bank(cfg_with()) == (None, None)
    batch, sample = build.build_memory_bank(cfg_with(memory_bank={"enabled": True}))
    assert isinstance(batch, BatchTMemoryBank) and sample is None
    assert batch.tail_classes == [6, 12, 14, 15, 16, 17, 18]  # the official Cityscapes tail
    on = {"enabled": True, "placement": "sample", "tail_classes": [1, 2]}
    batch, sample = build.build_memory_bank(cfg_with(memory_bank=on))
    assert batch is None and isinstance(sample, MemoryBankTransform)
    assert sample.bank.tail_classes == [1, 2]
    everything = cfg_with(memory_bank={"enabled": True, "classes": "all"})
    assert build.resolve_tail_classes(everything) == list(range(19))
    folder = cfg_with(data={"dataset": "folder", "classes": 19})
    with pytest.raises(InputError, match=r"no official tail list.*memory_bank\.tail_classes"):
        build.resolve_tail_classes(folder)


def test_slide_without_a_window_and_tta_views():
    with pytest.raises(InputError, match=r"evaluation\.crop_size and evaluation\.stride"):
        build.inference_window(cfg_with(), mode="slide")
    window = {"mode": "slide", "crop_size": [64, 64], "stride": [48, 48]}
    assert build.inference_window(cfg_with(evaluation=window)) == {
        "mode": "slide", "crop_size": (64, 64), "stride": (48, 48)
    }  # fmt: skip
    assert build.test_time_views(cfg_with()) == {"scales": (1.0,), "flip": False}
    tta = build.test_time_views(cfg_with(), tta=True)
    assert tta["flip"] and len(tta["scales"]) == 6


def test_device_resolution():
    assert build.resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert build.resolve_device("auto") == torch.device("cpu")
        with pytest.raises(InputError, match="CUDA is not available"):
            build.resolve_device("cuda")


def folder_root(root, n: int = 4, size: int = 40):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i in range(n):
            write_rgb(
                root / "images" / split / f"{i}.png",
                rng.integers(0, 255, (size, size, 3), np.uint8),
            )
            (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
            write_label(
                root / "annotations" / split / f"{i}.png",
                rng.integers(0, 3, (size, size), np.uint8),
            )
    return root


def folder_cfg(root, **extra):
    data = {
        "dataset": "folder", "root": str(root), "classes": ["a", "b", "c"], "img_suffix": ".png",
        "train_split": "train", "val_split": "val", "crop_size": [32, 32], "img_scale": [64, 32],
        "batch_size": 2, "num_workers": 0,
    }  # fmt: skip
    return config_from_dict(
        {"model": {"name": "segnext_tiny", "num_classes": 3}, "data": data, **extra}
    )


def test_train_and_val_data_from_a_folder(tmp_path):
    cfg = folder_cfg(folder_root(tmp_path))
    train = build.build_train_dataset(cfg)
    batch = next(iter(build.build_train_loader(cfg, train)))
    assert batch["image"].shape == (2, 3, 32, 32) and batch["label"].shape == (2, 32, 32)
    again = next(iter(build.build_train_loader(cfg, train, consumed_batches=1)))
    stream = iter(build.build_train_loader(cfg, train))
    next(stream)
    assert torch.equal(next(stream)["image"], again["image"])  # the stream resumes exactly
    val = build.build_val_dataset(cfg)
    item = val[0]
    assert item["image"].shape == (3, 32, 32) and item["label"].shape == (40, 40)
    assert list(val.classes) == ["a", "b", "c"]


def test_hooks_come_in_their_order(tmp_path):
    cfg = folder_cfg(folder_root(tmp_path), memory_bank={"enabled": True, "tail_classes": [2]})
    model = build.build_model_from_config(cfg)
    opt = build.build_optimizer(cfg, model)
    bank, _ = build.build_memory_bank(cfg)
    hooks, _ = build.build_hooks(
        cfg, tmp_path / "run", build.build_scheduler(cfg, opt), ["g"], lambda m: {}, bank
    )
    kinds = [type(h) for h in hooks]
    assert kinds == [
        LRSchedulerHook, LoggerHook, BankStatsHook, CheckpointHook, EvalHook, InterruptHook
    ]  # fmt: skip
    assert hooks[4].checkpointer is hooks[3]  # best.pth goes through the same writer
