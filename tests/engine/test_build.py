"""Config -> object builders, with stand-in model/loss/data layers."""

import pytest
import torch

from aucseg.config import config_from_dict
from aucseg.engine import build
from aucseg.engine.schedule import poly_warmup_lr

from . import fakes


def cfg_with(**sections):
    base = {"model": {"name": "segnext_tiny", "num_classes": 19, "pretrained": None}}
    base.update(sections)
    return config_from_dict(base)


def test_losses_get_their_own_keyword_arguments(monkeypatch):
    built = fakes.install(monkeypatch)
    terms = [{"name": "square_auc", "weight": 4.0, "gamma": 0.5}, {"name": "cross_entropy"}]
    losses = build.build_losses_from_config(cfg_with(loss={"terms": terms}), distributed=True)
    assert [m.loss_name for m in losses] == ["loss_square_auc", "loss_ce"]
    (_, n_auc, auc_kw), (_, _, ce_kw) = built["losses"]
    assert n_auc == 19
    assert auc_kw == {
        "loss_weight": 4.0, "ignore_index": 255, "gamma": 0.5, "transform": "ovo", "sync": True
    }  # fmt: skip
    assert ce_kw == {"loss_weight": 1.0, "ignore_index": 255, "avg_non_ignore": False}


def test_optimizer_and_scheduler_from_config(monkeypatch):
    fakes.install(monkeypatch)
    cfg = cfg_with(schedule={"max_iters": 100, "warmup_iters": 10, "warmup_ratio": 0.1})
    model = build.build_model_from_config(cfg)
    opt = build.build_optimizer(cfg, model)
    sched = build.build_scheduler(cfg, opt)
    lrs = sched.step_to(5)
    expected = poly_warmup_lr(5, 6e-5, 100, warmup_iters=10, warmup_ratio=0.1)
    assert sorted(lrs) == pytest.approx(sorted([expected] * (len(lrs) - 1) + [expected * 10]))
    assert {g["weight_decay"] for g in opt.param_groups} == {0.0, 0.01}


def test_memory_bank_placements_and_tail_lists(monkeypatch):
    fakes.install(monkeypatch)
    assert build.build_memory_bank(cfg_with()) == (None, None)
    batch, sample = build.build_memory_bank(
        cfg_with(data={"dataset": "cityscapes"}, memory_bank={"enabled": True})
    )
    assert sample is None and batch.tail_classes == [6, 12, 14, 15, 16, 17, 18]
    batch, sample = build.build_memory_bank(
        cfg_with(memory_bank={"enabled": True, "placement": "sample", "tail_classes": [1, 2]})
    )
    assert batch is None and callable(sample)
    with pytest.raises(ValueError, match=r"set memory_bank\.tail_classes"):
        build.resolve_tail_classes(cfg_with(data={"dataset": "folder"}))


def test_num_classes_mismatch_and_slide_without_window(monkeypatch, tmp_path):
    fakes.install(monkeypatch)
    cfg = cfg_with(model={"name": "segnext_tiny", "num_classes": 5}, data={"root": str(tmp_path)})
    with pytest.raises(ValueError, match=r"model.num_classes=5 .* 19 classes"):
        build.check_num_classes(cfg, build.build_val_dataset(cfg))
    with pytest.raises(ValueError, match=r"evaluation\.crop_size"):
        build.build_evaluate_fn(cfg_with(), dataset=None, device=torch.device("cpu"), mode="slide")
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    with pytest.raises(ValueError, match=r"evaluation\.crop_size"):  # before loading the model
        build.predict_from_config(cfg_with(), tmp_path / "none.pth", [image], tmp_path, "slide")


def test_device_resolution():
    assert build.resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert build.resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ValueError, match="CUDA is not available"):
            build.resolve_device("cuda")
