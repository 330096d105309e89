"""The Trainer and its hooks on a tiny real model and in-memory data."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

from aucseg.augment import BatchTMemoryBank
from aucseg.data import make_train_loader
from aucseg.engine.checkpoint import load_checkpoint_file
from aucseg.engine.hooks import (
    BankStatsHook,
    CheckpointHook,
    EvalHook,
    HookBase,
    InterruptHook,
    LoggerHook,
    LRSchedulerHook,
)
from aucseg.engine.logger import TrainLogger
from aucseg.engine.optim import build_adamw
from aucseg.engine.schedule import PolyWarmupScheduler, poly_warmup_lr
from aucseg.engine.trainer import StepOptions, Trainer, term_names
from aucseg.errors import InputError, Interrupted, NonFiniteError
from aucseg.losses import build_loss

from .tiny import (
    CountingLoss,
    NaNFrom,
    NaNGradientAt,
    NaNValueAt,
    SigintAt,
    TinyNet,
    TinyScenes,
)


class ParamSnapshots(HookBase):
    """Records the parameters before every step: ``before[k]`` precedes step ``k`` (1-based)."""

    def __init__(self) -> None:
        self.before: dict[int, list[torch.Tensor]] = {}

    def before_step(self) -> None:
        params = [p.detach().clone() for p in self.trainer.model.parameters()]
        self.before[self.trainer.iteration + 1] = params


def make_trainer(
    work_dir: Path,
    max_iters: int = 6,
    losses: list | None = None,
    batch_size: int = 2,
    num_workers: int = 0,
    lr: float = 1e-2,
    weight_decay: float = 0.01,
    log_interval: int = 2,
    checkpoint_interval: int = 3,
    keep_iter: bool = False,
    evaluate_fn=None,
    eval_interval: int = 2,
    extra_hooks: tuple = (),
    seed: int = 0,
    bank: BatchTMemoryBank | None = None,
    fused: bool = True,
    **options,
) -> Trainer:
    """A trainer wired as :func:`aucseg.engine.build.build_hooks` wires a real run."""
    torch.manual_seed(seed)
    model = TinyNet()
    optimizer = build_adamw(model, lr=lr, weight_decay=weight_decay, fused=fused)
    scheduler = PolyWarmupScheduler(optimizer, max_iters, warmup_iters=2, warmup_ratio=0.1)
    dataset = TinyScenes()
    logger = TrainLogger(work_dir, max_iters, tensorboard=False, progress=False)
    checkpointer = CheckpointHook(work_dir, checkpoint_interval, keep_iter)
    groups = [g["group"] for g in optimizer.param_groups]
    hooks = [*extra_hooks, LRSchedulerHook(scheduler), LoggerHook(logger, log_interval, groups)]
    if bank is not None:
        hooks.append(BankStatsHook(bank, logger, log_interval))
    hooks.append(checkpointer)
    if evaluate_fn is not None:
        hooks.append(EvalHook(evaluate_fn, eval_interval, "mIoU", checkpointer, logger))
    hooks.append(InterruptHook(checkpointer))

    def data(consumed: int):
        return make_train_loader(dataset, batch_size, consumed, seed=seed, num_workers=num_workers)

    return Trainer(
        model,
        losses or [CountingLoss()],
        optimizer,
        data,
        max_iters,
        StepOptions(seed=seed, **options),
        memory_bank=bank,
        hooks=hooks,
    )


def records(work_dir: Path, tag: str = "train") -> list[dict]:
    lines = (work_dir / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["tag"] == tag]


def last_state(work_dir: Path, name: str = "last.pth") -> dict:
    return load_checkpoint_file(work_dir / "checkpoints" / name)


def assert_same_params(a, b) -> None:
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


def same_values(a, b) -> bool:
    """Equality of nested dicts/lists of tensors and plain values."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def all_finite(state: dict) -> bool:
    return all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


# ----------------------------------------------------------------------------- a normal run


def test_trains_logs_and_checkpoints_with_normal_file_mode(tmp_path):
    previous = os.umask(0o027)
    try:
        trainer = make_trainer(tmp_path, max_iters=6)
        before = [p.detach().clone() for p in trainer.model.parameters()]
        out = trainer.train()
    finally:
        os.umask(previous)
    assert out["iteration"] == 6 and out["last_checkpoint"] == tmp_path / "checkpoints/last.pth"
    after = list(trainer.model.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    path = tmp_path / "checkpoints" / "last.pth"
    assert path.stat().st_mode & 0o777 == 0o640  # 0o666 minus the umask, not mkstemp's 0o600
    state = last_state(tmp_path)
    assert state["iteration"] == 6 and state["scheduler"]["last_iter"] == 5
    assert state["meta"]["amp"] == "none" and state["optimizer"]["state"]
    logged = records(tmp_path)
    assert [r["iter"] for r in logged] == [2, 4, 6]
    assert {"loss_ce", "loss", "lr/backbone", "lr/head", "images_per_s", "memory_mb"} <= set(
        logged[0]
    )
    assert logged[0]["lr/head"] == pytest.approx(10 * logged[0]["lr/backbone"])
    assert logged[0]["lr/backbone"] == pytest.approx(poly_warmup_lr(1, 1e-2, 6, 1.0, 0.0, 2, 0.1))
    assert logged[-1]["loss_ce"] < logged[0]["loss_ce"]  # it learns
    assert not list((tmp_path / "checkpoints").glob(".*"))  # no temporary files left


def test_keep_iter_checkpoints(tmp_path):
    make_trainer(tmp_path, max_iters=4, checkpoint_interval=2, keep_iter=True).train()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["iter_0000002.pth", "iter_0000004.pth", "last.pth"]
    assert last_state(tmp_path, "iter_0000002.pth")["iteration"] == 2


def test_duplicate_loss_names_get_unique_log_names(tmp_path):
    losses = [CountingLoss(), CountingLoss(), CountingLoss(loss_name="loss_x")]
    assert term_names(losses) == ["loss_ce", "loss_ce_1", "loss_x"]
    make_trainer(tmp_path, max_iters=2, losses=losses).train()
    logged = records(tmp_path)[-1]
    assert logged["loss_ce"] == pytest.approx(logged["loss_ce_1"])
    assert logged["loss"] == pytest.approx(
        logged["loss_ce"] + logged["loss_ce_1"] + logged["loss_x"]
    )


def test_no_losses_and_bad_options_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="at least one loss"):
        Trainer(TinyNet(), [], build_adamw(TinyNet()), lambda n: iter(()), 1)
    with pytest.raises(InputError, match="amp must be one of"):
        StepOptions(amp="fp8")
    with pytest.raises(InputError, match="nonfinite"):
        StepOptions(nonfinite="ignore")


def test_labels_out_of_range_are_one_input_error_at_the_first_step(tmp_path):
    class Shifted(TinyScenes):
        def __getitem__(self, i):
            item = super().__getitem__(i)
            item["label"][1, 1] = 7  # class 7 of a 4-class model
            return item

    trainer = make_trainer(tmp_path, max_iters=2)
    trainer.data = lambda consumed: make_train_loader(Shifted(), 2, consumed)
    with pytest.raises(InputError, match=r"values \[7\] outside 0\.\.3 .* iteration 0"):
        trainer.train()


# ----------------------------------------------------------------------------- determinism


def test_resume_equals_uninterrupted_bitwise_and_logs_each_iteration_once(tmp_path):
    full = make_trainer(tmp_path / "full", max_iters=8)
    full.train()
    # a run "killed" after 5 iterations; it resumes from the checkpoint of iteration 3
    killed = tmp_path / "killed"
    make_trainer(killed, max_iters=8, keep_iter=True).train(stop_at=5)
    assert [r["iter"] for r in records(killed)] == [2, 4, 5]
    torch.manual_seed(999)  # a fresh process starts from other RNG states
    resumed = make_trainer(killed, max_iters=8, seed=0)
    resumed.load_state_dict(last_state(killed, "iter_0000003.pth"))
    assert resumed.iteration == 3
    resumed.train()
    assert resumed.iteration == 8
    full_state, resumed_state = full.model.state_dict(), resumed.model.state_dict()
    for name, value in full_state.items():
        assert torch.equal(value, resumed_state[name]), name
    sa, sb = full.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    for key in sa:
        assert torch.equal(sa[key]["exp_avg"], sb[key]["exp_avg"])
        assert torch.equal(sa[key]["exp_avg_sq"], sb[key]["exp_avg_sq"])
    # the killed run's records after iteration 3 were dropped: each iteration once
    assert [r["iter"] for r in records(killed)] == [2, 4, 6, 8]
    assert records(killed)[-1]["loss_ce"] == records(tmp_path / "full")[-1]["loss_ce"]


def test_memory_bank_state_resumes_bitwise(tmp_path):
    def bank() -> BatchTMemoryBank:
        return BatchTMemoryBank(num_classes=4, tail_classes=[2, 3], memory_size=2, seed=0)

    full = make_trainer(tmp_path / "full", max_iters=6, bank=bank())
    full.train()
    make_trainer(tmp_path / "cut", max_iters=6, bank=bank()).train(stop_at=3)
    state = last_state(tmp_path / "cut")
    assert state["memory_bank"]["num_classes"] == 4 and any(state["memory_bank"]["memory"])
    resumed = make_trainer(tmp_path / "cut", max_iters=6, bank=bank())
    resumed.load_state_dict(state)
    resumed.train()
    assert_same_params(full.model.parameters(), resumed.model.parameters())
    a, b = full.memory_bank.state_dict(), resumed.memory_bank.state_dict()
    assert same_values(a["memory"], b["memory"]) and same_values(a["rng"], b["rng"])
    stats = records(tmp_path / "full", "bank")
    assert [r["iter"] for r in stats] == [2, 4, 6] and all(r["samples"] == 4 for r in stats)


def test_data_order_independent_of_workers(tmp_path):
    a = make_trainer(tmp_path / "a", max_iters=3)
    a.train()
    b = make_trainer(tmp_path / "b", max_iters=3, num_workers=2)
    b.train()
    assert_same_params(a.model.parameters(), b.model.parameters())


def test_accumulation_equals_large_batch(tmp_path):
    big = make_trainer(tmp_path / "big", max_iters=3, batch_size=4)
    big.train()
    acc = make_trainer(tmp_path / "acc", max_iters=3, batch_size=2, accumulation_steps=2)
    acc.train()
    for x, y in zip(big.model.parameters(), acc.model.parameters(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)
    one = make_trainer(tmp_path / "one", max_iters=3, batch_size=2)
    one.train()  # and it is not trivially so: half the batch trains differently
    assert not torch.allclose(
        one.model.decode_head.conv_seg.weight, big.model.decode_head.conv_seg.weight
    )


# ----------------------------------------------------------------------------- precision


def test_bf16_autocast_on_cpu(tmp_path):
    trainer = make_trainer(tmp_path, max_iters=2, amp="bf16")
    seen = []
    trainer.model.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    out = trainer.train()
    assert seen and set(seen) == {torch.bfloat16}
    assert math.isfinite(out["last_log"]["loss"])
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_fp16_autocast_with_grad_scaler(tmp_path):
    trainer = make_trainer(tmp_path, max_iters=2, amp="fp16")
    out = trainer.train()
    assert trainer.scaler.is_enabled()
    assert out["iteration"] == 2 and out["last_log"]["loss_scale"] > 0
    state = last_state(tmp_path)
    assert state["scaler"]["scale"] > 0 and state["meta"]["amp"] == "fp16"
    assert all_finite(state)


# ----------------------------------------------------------------------------- NaN / Inf


def test_nan_term_stops_naming_term_and_iteration_without_applying_it(tmp_path):
    snapshots = ParamSnapshots()
    trainer = make_trainer(
        tmp_path,
        max_iters=8,
        losses=[CountingLoss(), NaNFrom(at=3)],
        log_interval=4,
        checkpoint_interval=2,
        extra_hooks=(snapshots,),
    )
    message = r"^loss term 'loss_poison' and the gradient became non-finite at iteration 3;"
    with pytest.raises(NonFiniteError, match=message):
        trainer.train()
    # read at the log step 4: steps 3 and 4 were both skipped on the device
    assert trainer.iteration == 4
    assert_same_params(trainer.model.parameters(), snapshots.before[3])
    state = last_state(tmp_path)
    assert state["iteration"] == 2 and all_finite(state)  # the checkpoint of 4 was not written
    assert all(int(s["step"]) == 2 for s in trainer.optimizer.state_dict()["state"].values())


@pytest.mark.parametrize("poison", [NaNFrom, NaNValueAt], ids=["nan-gradient", "finite-gradient"])
@pytest.mark.parametrize(
    "setting", [{}, {"fused": False}, {"amp": "fp16"}], ids=["fused", "foreach", "fp16-scaler"]
)
def test_a_nan_term_is_never_applied(tmp_path, setting, poison):
    snapshots = ParamSnapshots()
    trainer = make_trainer(
        tmp_path, max_iters=4, losses=[CountingLoss(), poison(at=2)], log_interval=4,
        extra_hooks=(snapshots,), **setting,
    )  # fmt: skip
    with pytest.raises(NonFiniteError, match=rf"'{poison.loss_name}'.* at iteration 2"):
        trainer.train()
    assert_same_params(snapshots.before[3], snapshots.before[2])  # step 2 changed nothing
    assert not torch.equal(snapshots.before[2][0], snapshots.before[1][0])  # step 1 did


def test_nan_error_names_the_last_good_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, max_iters=8, losses=[NaNFrom(at=4)], log_interval=1)
    with pytest.raises(NonFiniteError) as info:
        trainer.train()
    assert info.value.iteration == 4 and "loss term 'loss_poison'" in info.value.what
    assert str(tmp_path / "checkpoints" / "last.pth") in str(info.value)
    assert "runtime.nonfinite=skip" in str(info.value)


def test_gradient_only_nan_names_the_gradient(tmp_path):
    snapshots = ParamSnapshots()
    trainer = make_trainer(
        tmp_path, max_iters=4, losses=[NaNGradientAt(at=2)], log_interval=2,
        extra_hooks=(snapshots,),
    )  # fmt: skip
    with pytest.raises(NonFiniteError, match=r"^the gradient became non-finite at iteration 2"):
        trainer.train()
    assert_same_params(trainer.model.parameters(), snapshots.before[2])


def test_nonfinite_skip_skips_and_continues(tmp_path):
    snapshots = ParamSnapshots()
    trainer = make_trainer(
        tmp_path, max_iters=6, losses=[NaNFrom(at=2, once=True)], log_interval=4,
        checkpoint_interval=3, nonfinite="skip", extra_hooks=(snapshots,),
    )  # fmt: skip
    out = trainer.train()
    assert out["iteration"] == 6
    assert_same_params(snapshots.before[3], snapshots.before[2])  # step 2 changed nothing
    assert not torch.equal(snapshots.before[4][0], snapshots.before[3][0])  # step 3 did
    logged = records(tmp_path)
    assert [r.get("skipped_steps") for r in logged] == [1, None]
    assert all_finite(last_state(tmp_path))


@pytest.mark.parametrize("lr", [1e30, 3e38])
def test_huge_lr_divergence_never_writes_nonfinite_parameters(tmp_path, lr):
    trainer = make_trainer(
        tmp_path, max_iters=8, lr=lr, log_interval=8, checkpoint_interval=1,
        keep_iter=True,
    )  # fmt: skip
    with pytest.raises(NonFiniteError):
        trainer.train()
    written = sorted((tmp_path / "checkpoints").glob("*.pth"))
    assert all(all_finite(load_checkpoint_file(p)) for p in written)


# ----------------------------------------------------------------------------- resume rules


def test_lr_override_on_resume_takes_effect(tmp_path):
    make_trainer(tmp_path, max_iters=6, lr=1e-2).train(stop_at=3)
    resumed = make_trainer(tmp_path, max_iters=6, lr=1e-3, weight_decay=0.05)
    resumed.load_state_dict(last_state(tmp_path))
    groups = {g["group"]: g for g in resumed.optimizer.param_groups}
    assert groups["backbone"]["weight_decay"] == 0.05  # hyperparameters of the current config
    assert groups["backbone"]["initial_lr"] == 1e-3 and groups["head"]["initial_lr"] == 1e-2
    assert resumed.optimizer.state_dict()["state"]  # the moments came from the checkpoint
    resumed.train()
    logged = records(tmp_path)
    assert [r["iter"] for r in logged] == [2, 3, 4, 6]
    assert logged[2]["lr/backbone"] == pytest.approx(poly_warmup_lr(3, 1e-3, 6, 1.0, 0.0, 2, 0.1))
    assert last_state(tmp_path)["scheduler"]["base_lrs"] == pytest.approx([1e-3, 1e-3, 1e-2])


# ----------------------------------------------------------------------------- hooks


def test_evaluation_keeps_best_checkpoint(tmp_path):
    scores = iter([10.0, 30.0, 20.0])

    def evaluate(model):
        assert not model.training
        return {"mIoU": next(scores), "per_class": []}

    trainer = make_trainer(tmp_path, max_iters=6, evaluate_fn=evaluate, checkpoint_interval=2)
    out = trainer.train()
    assert trainer.model.training
    assert out["best_metric"] == {"name": "mIoU", "value": 30.0, "iteration": 4}
    assert last_state(tmp_path, "best.pth")["iteration"] == 4
    assert last_state(tmp_path)["best_metric"] == out["best_metric"]
    assert [r["mIoU"] for r in records(tmp_path, "val")] == [10.0, 30.0, 20.0]


def test_checkpoint_is_written_before_evaluation(tmp_path):
    def evaluate(model):
        raise RuntimeError("the evaluation failed")

    trainer = make_trainer(
        tmp_path, max_iters=6, evaluate_fn=evaluate, eval_interval=4, checkpoint_interval=4
    )
    with pytest.raises(RuntimeError, match="evaluation failed"):
        trainer.train()
    assert last_state(tmp_path)["iteration"] == 4


def test_missing_best_metric_is_an_input_error(tmp_path):
    trainer = make_trainer(tmp_path, max_iters=2, evaluate_fn=lambda m: {"mIoU": None})
    with pytest.raises(InputError, match="best_metric 'mIoU'"):
        trainer.train()


def test_sigint_inside_a_step_saves_and_raises_interrupted(tmp_path):
    handler = signal.getsignal(signal.SIGINT)
    trainer = make_trainer(tmp_path, max_iters=8, losses=[SigintAt(at=5)], checkpoint_interval=4)
    with pytest.raises(Interrupted) as info:
        trainer.train()
    assert info.value.iteration == 5 and info.value.signum == signal.SIGINT
    assert info.value.checkpoint == tmp_path / "checkpoints" / "last.pth"
    assert last_state(tmp_path)["iteration"] == 5
    assert signal.getsignal(signal.SIGINT) is handler  # the previous handler is back


# ----------------------------------------------------------------------------- host syncs

# Tensor -> host reads: each waits for the device (a CUDA sync) when the tensor lives there.
HOST_READS = {
    torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__bool__, torch.Tensor.__int__,
    torch.Tensor.__float__, torch.Tensor.__index__, torch.Tensor.cpu, torch.Tensor.numpy,
    torch.Tensor.nonzero, torch.nonzero, torch.argwhere, torch.Tensor.unique, torch.unique,
    torch.unique_consecutive, torch.masked_select, torch.Tensor.masked_select, torch.bincount,
    torch.Tensor.bincount, torch.repeat_interleave, torch.Tensor.repeat_interleave,
    torch.equal, torch.allclose,
}  # fmt: skip


def _bool_index(func, args) -> bool:
    """``x[mask]`` / ``x[mask] = v``: a boolean index needs its count on the host."""
    if func not in (torch.Tensor.__getitem__, torch.Tensor.__setitem__) or len(args) < 2:
        return False
    index = args[1] if isinstance(args[1], tuple) else (args[1],)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index)


class HostReads(TorchFunctionMode):
    """Counts host reads per step (the step a :class:`StepMarker` announced last)."""

    def __init__(self, marker: StepMarker) -> None:
        super().__init__()
        self.marker = marker
        self.reads: dict[int, list[str]] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        one_arg_where = func is torch.where and len(args) == 1
        if func in HOST_READS or one_arg_where or _bool_index(func, args):
            self.reads.setdefault(self.marker.step, []).append(func.__name__)
        return func(*args, **(kwargs or {}))


class StepMarker(HookBase):
    """First hook: every call until the next step counts for ``step`` (1-based)."""

    step = 0

    def before_step(self) -> None:
        self.step = self.trainer.iteration + 1


def test_host_reads_recognised():
    marker = StepMarker()
    with HostReads(marker) as mode:
        x = torch.arange(4.0)
        bool(x.sum() > 0), x.max().item(), x[x > 1], x.tolist(), torch.nonzero(x)
    assert mode.reads[0] == ["__bool__", "item", "__getitem__", "tolist", "nonzero"]


@pytest.mark.parametrize(
    ("losses", "options"),
    [
        (["cross_entropy"], {}),
        (["square_auc", "cross_entropy"], {"grad_clip": 1.0, "accumulation_steps": 2}),
        (["hinge_auc"], {}),
        (["square_auc", "cross_entropy"], {"amp": "fp16"}),
    ],
    ids=["ce", "aucseg-clip-accumulation", "hinge", "aucseg-fp16"],
)
def test_steady_steps_make_no_host_reads(tmp_path, losses, options):
    dataset = TinyScenes()
    batches = [
        {k: torch.stack([dataset[i][k], dataset[i + 1][k]]) for k in ("image", "label")}
        for i in range(0, 8, 2)
    ]  # in memory: the count is the step's, not the loader's
    marker = StepMarker()
    trainer = make_trainer(
        tmp_path, max_iters=8, log_interval=4, checkpoint_interval=4, extra_hooks=(marker,),
        losses=[build_loss(name, 4) for name in losses], **options,
    )  # fmt: skip
    assert trainer.optimizer.defaults["fused"]
    trainer.data = lambda consumed: itertools.islice(itertools.cycle(batches), consumed, None)
    with HostReads(marker) as mode:
        trainer.train()
    steady = [2, 3, 5, 6, 7]  # not the first step (input checks), not log/checkpoint steps
    assert {step: mode.reads.get(step, []) for step in steady} == {s: [] for s in steady}
    assert mode.reads[1] and mode.reads[4]  # the first and the log steps do read the host
