import json

import pytest
import torch

from aucseg.engine.checkpoint import load_checkpoint_file
from aucseg.engine.optim import build_adamw
from aucseg.engine.schedule import PolyWarmupScheduler
from aucseg.engine.trainer import (
    NonFiniteLossError,
    ResumableSampler,
    Trainer,
    make_train_loader,
)

from .standins import CELoss, PoisonLoss, RandomCropDataset, TinySegmentor


def make_trainer(work_dir, max_iters=8, losses=None, seed=0, **kw):
    torch.manual_seed(seed)
    model = TinySegmentor()
    opt = build_adamw(model, lr=1e-2, weight_decay=0.01)
    sched = PolyWarmupScheduler(opt, max_iters, warmup_iters=2, warmup_ratio=0.1)
    dataset = RandomCropDataset()
    batch = kw.pop("batch_size", 2)
    workers = kw.pop("num_workers", 0)

    def loader(consumed):
        return make_train_loader(dataset, batch, consumed, seed=seed, num_workers=workers)

    kw.setdefault("checkpoint_interval", 3)
    kw.setdefault("log_interval", 2)
    return Trainer(
        model,
        losses or [CELoss()],
        opt,
        sched,
        loader,
        max_iters,
        work_dir,
        tensorboard=kw.pop("tensorboard", False),
        progress=False,
        **kw,
    )


def test_sampler_resumes_mid_stream_and_shards():
    full = ResumableSampler(5, seed=3)
    it = iter(full)
    stream = [next(it) for _ in range(12)]
    assert sorted(i for i, _ in stream[:5]) == list(range(5))  # each epoch is a permutation
    it7 = iter(ResumableSampler(5, seed=3, start=7))
    assert [next(it7) for _ in range(5)] == stream[7:12]
    r0 = iter(ResumableSampler(5, seed=3, rank=0, world_size=2))
    r1 = iter(ResumableSampler(5, seed=3, rank=1, world_size=2))
    assert [next(r0) for _ in range(3)] == stream[0:6:2]
    assert [next(r1) for _ in range(3)] == stream[1:6:2]


def test_trains_logs_and_checkpoints(tmp_path):
    trainer = make_trainer(tmp_path, max_iters=6, tensorboard=True)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    out = trainer.train()
    assert out["iteration"] == 6
    assert any(
        not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True)
    )
    state = load_checkpoint_file(tmp_path / "checkpoints" / "last.pth")
    assert state["iteration"] == 6 and state["scheduler"]["last_iter"] == 5
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in lines] == [2, 4, 6]
    assert {"loss_ce", "loss", "lr", "lr_group1", "images_per_s", "memory_mb"} <= set(lines[0])
    assert lines[-1]["loss_ce"] < lines[0]["loss_ce"]
    assert list((tmp_path / "tensorboard").iterdir())


def test_resume_equals_uninterrupted_bitwise(tmp_path):
    full = make_trainer(tmp_path / "full", max_iters=8)
    full.train()
    # "kill" after 5 iterations: only the checkpoint of iteration 3 survives
    killed = make_trainer(tmp_path / "killed", max_iters=8)
    killed.train(stop_at=5)
    assert load_checkpoint_file(tmp_path / "killed/checkpoints/last.pth")["iteration"] == 3
    torch.manual_seed(999)  # a fresh process would start from a different RNG state
    resumed = make_trainer(tmp_path / "killed", max_iters=8, seed=0)
    assert resumed.resume(tmp_path / "killed/checkpoints/last.pth") == 3
    resumed.train()
    assert resumed.iteration == 8
    for (name, a), b in zip(
        full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    sa, sb = full.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) for k in sa)


def test_data_order_independent_of_workers(tmp_path):
    a = make_trainer(tmp_path / "a", max_iters=3)
    a.train()
    b = make_trainer(tmp_path / "b", max_iters=3, num_workers=2)
    b.train()
    for x, y in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(x, y)


def test_accumulation_matches_large_batch(tmp_path):
    # without dropout/BN-statistics differences, 2 x batch 2 with accumulation == batch 4
    def run(name, batch, accum):
        t = make_trainer(tmp_path / name, max_iters=2, batch_size=batch, accumulation_steps=accum)
        t.model.backbone.drop.p = 0.0
        t.model.apply(lambda m: setattr(m, "momentum", 0.0) if hasattr(m, "momentum") else None)
        for m in t.model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
                m.train = lambda mode=True, m=m: m  # keep BN in eval (batch-independent)
        t.train()
        return t

    big, acc = run("big", 4, 1), run("acc", 2, 2)
    for x, y in zip(big.model.parameters(), acc.model.parameters(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_on_cpu(tmp_path):
    trainer = make_trainer(tmp_path, max_iters=2, amp="bf16")
    out = trainer.train()
    assert out["iteration"] == 2 and torch.isfinite(torch.tensor(out["last_log"]["loss"]))


def test_fp16_autocast_with_grad_scaler(tmp_path):
    trainer = make_trainer(tmp_path, max_iters=2, amp="fp16")
    out = trainer.train()
    assert out["iteration"] == 2 and "loss_scale" in out["last_log"]
    state = load_checkpoint_file(tmp_path / "checkpoints" / "last.pth")
    assert state["scaler"]["scale"] > 0 and state["meta"]["amp"] == "fp16"


def test_nan_stops_with_term_and_iteration_keeping_last_good(tmp_path):
    trainer = make_trainer(tmp_path, max_iters=8, losses=[CELoss(), PoisonLoss(at=4)])
    with pytest.raises(NonFiniteLossError, match=r"'loss_poison' is nan at iteration 4") as exc:
        trainer.train()
    assert "last.pth" in str(exc.value)
    state = load_checkpoint_file(tmp_path / "checkpoints" / "last.pth")
    assert state["iteration"] == 3
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_evaluation_keeps_best_checkpoint(tmp_path):
    scores = iter([10.0, 30.0, 20.0])

    def fake_eval(model):
        assert not model.training
        return {"mIoU": next(scores), "mIoU_tail": 1.0, "per_class": []}

    trainer = make_trainer(tmp_path, max_iters=6, evaluate_fn=fake_eval, eval_interval=2)
    out = trainer.train()
    assert out["best_metric"] == {"name": "mIoU", "value": 30.0, "iteration": 4}
    assert load_checkpoint_file(tmp_path / "checkpoints" / "best.pth")["iteration"] == 4
    val = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["mIoU"] for r in val if r["tag"] == "val"] == [10.0, 30.0, 20.0]


def test_iter_checkpoints_and_bad_best_metric(tmp_path):
    trainer = make_trainer(tmp_path, max_iters=3, keep_iter_checkpoints=True)
    trainer.train()
    assert (tmp_path / "checkpoints" / "iter_0000003.pth").is_file()
    bad = make_trainer(
        tmp_path / "b", max_iters=2, evaluate_fn=lambda m: {"mIoU": 1.0}, eval_interval=1
    )
    bad.best_metric = "mIoU_tail"
    with pytest.raises(ValueError, match="mIoU_tail"):
        bad.train()
