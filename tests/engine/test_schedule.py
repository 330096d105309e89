import pytest
import torch

from aucseg.engine.schedule import PolyWarmupScheduler, poly_warmup_lr


def mmcv_lr(t, base, max_iters, power=1.0, min_lr=0.0, warm=1500, ratio=1e-6):
    # PolyLrUpdaterHook.get_lr + LrUpdaterHook.get_warmup_lr('linear'), written out
    regular = (base - min_lr) * (1 - t / max_iters) ** power + min_lr
    if t >= warm:
        return regular
    k = (1 - t / warm) * (1 - ratio)
    return regular * (1 - k)


@pytest.mark.parametrize("t", [0, 1, 749, 1499, 1500, 80000, 159999])
def test_matches_mmcv_formula(t):
    got = poly_warmup_lr(t, 6e-5, 160000, 1.0, 0.0, 1500, 1e-6)
    assert got == pytest.approx(mmcv_lr(t, 6e-5, 160000), rel=1e-12, abs=1e-20)


def test_hand_values():
    assert poly_warmup_lr(0, 1.0, 100, warmup_iters=10, warmup_ratio=0.1) == pytest.approx(0.1)
    # t=5: poly 0.95, warm-up factor 1 - 0.5*0.9 = 0.55
    assert poly_warmup_lr(5, 1.0, 100, warmup_iters=10, warmup_ratio=0.1) == pytest.approx(0.5225)
    assert poly_warmup_lr(50, 1.0, 100, power=2.0, min_lr=0.1) == pytest.approx(0.325)


def test_scheduler_sets_every_group_and_round_trips():
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [p1], "lr": 1.0}, {"params": [p2], "lr": 10.0}])
    sched = PolyWarmupScheduler(opt, max_iters=100, warmup_iters=10, warmup_ratio=0.1)
    assert sched.step_to(5) == pytest.approx([0.5225, 5.225])
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.5225, 5.225])
    state = sched.state_dict()
    opt2 = torch.optim.AdamW([{"params": [p1], "lr": 1.0}, {"params": [p2], "lr": 10.0}])
    sched2 = PolyWarmupScheduler(opt2, max_iters=100, warmup_iters=10, warmup_ratio=0.1)
    sched2.load_state_dict(state)
    assert [g["lr"] for g in opt2.param_groups] == pytest.approx([0.5225, 5.225])


def test_bad_arguments():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="max_iters must be >= 1, got 0"):
        PolyWarmupScheduler(opt, max_iters=0)
    with pytest.raises(ValueError, match="warmup_ratio"):
        PolyWarmupScheduler(opt, max_iters=5, warmup_ratio=0.0)


def test_new_base_lrs_replace_the_stored_ones_on_resume():
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    old = torch.optim.AdamW([{"params": [p1], "lr": 1.0}, {"params": [p2], "lr": 10.0}])
    stored = PolyWarmupScheduler(old, max_iters=100)
    stored.step_to(50)
    new = torch.optim.AdamW([{"params": [p1], "lr": 0.1}, {"params": [p2], "lr": 1.0}])
    sched = PolyWarmupScheduler(new, max_iters=100)
    base = list(sched.base_lrs)
    sched.load_state_dict(stored.state_dict())
    sched.set_base_lrs(base)  # what LRSchedulerHook does: the current config's lr wins
    assert sched.last_iter == 50
    assert [g["lr"] for g in new.param_groups] == pytest.approx([0.05, 0.5])
    assert [g["initial_lr"] for g in new.param_groups] == [0.1, 1.0]
    with pytest.raises(ValueError, match="expected 2 base lrs, got 1"):
        sched.set_base_lrs([1.0])


def test_a_state_of_another_optimizer_is_refused():
    p = torch.nn.Parameter(torch.zeros(1))
    one = PolyWarmupScheduler(torch.optim.SGD([p], lr=1.0), max_iters=10)
    two = torch.optim.SGD(
        [{"params": [p]}, {"params": [torch.nn.Parameter(torch.zeros(1))]}], lr=1.0
    )
    with pytest.raises(ValueError, match="scheduler state has 1 param groups, the optimizer has 2"):
        PolyWarmupScheduler(two, max_iters=10).load_state_dict(one.state_dict())
