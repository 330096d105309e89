"""Training-step benchmark: CE-only versus AUCSeg (Square AUC + CE + T-Memory Bank).

Both configurations run through :class:`aucseg.engine.trainer.Trainer` with the same model
(same initial weights), the same AdamW groups and the same batches, which come from generated
long-tail scenes (:func:`aucseg.data.synthetic.make_synthetic`, Cityscapes layout, normalised
and held in memory, so rare tail classes are really stored and pasted by the bank):

* **CE**: losses ``[CrossEntropyLoss]``, no memory bank;
* **AUCSeg**: losses ``[SquareAUCLoss(loss_weight=1), CrossEntropyLoss]`` plus a
  :class:`aucseg.augment.BatchTMemoryBank` (memory 5, p_sample 1, p_resize 1, the Cityscapes
  tail ids) applied to each mini-batch on the training device. The bank is filled with the
  whole set before timing, so it is measured full (its steady state).

Each run builds a fresh optimizer and Trainer from the same initial weights, trains ``--warmup``
untimed iterations, then ``--iters`` timed ones. CE and AUCSeg runs alternate (the order is
swapped every round) and the median seconds/iteration over ``--repeats`` rounds is reported,
with the ratio AUCSeg/CE and the overhead in percent. On CUDA the peak
``torch.cuda.max_memory_allocated`` of each configuration is reported (reset before each run).
Timing and memory: ``benchmarks/_timing.py`` (synchronised on CUDA).

A breakdown of the extra work follows (``--no-breakdown`` skips it): the forward+backward of
each loss on the model's logits and one bank call per batch, timed in isolation.

Secondary measurement (``--engine-overhead``): the engine's Trainer against a bare PyTorch loop
(CE, same model and batches), and an atomic checkpoint write / ``weights_only`` load.

    python benchmarks/train_step.py                           # SegNeXt-T, 256x256, batch 4, CPU
    python benchmarks/train_step.py --model segnext_large --size 512 --device cuda --amp bf16
    python benchmarks/train_step.py --model convnet --engine-overhead   # tiny built-in model
"""

from __future__ import annotations

import argparse
import copy
import gc
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from _timing import PeakMemory, Stopwatch, time_call
from aucseg.augment import BatchTMemoryBank
from aucseg.data import OFFICIAL_TAIL_CLASSES, build_dataset
from aucseg.data.stats import default_rule, split_groups
from aucseg.data.synthetic import make_synthetic
from aucseg.data.transforms import Compose, Normalize, ToTensor
from aucseg.engine.checkpoint import load_checkpoint_file, save_atomic
from aucseg.engine.hooks import LRSchedulerHook
from aucseg.engine.optim import build_adamw
from aucseg.engine.schedule import PolyWarmupScheduler
from aucseg.engine.trainer import StepOptions, Trainer
from aucseg.losses import build_loss
from aucseg.models import build_model

IGNORE = 255


class ConvSegmentor(nn.Module):
    """Small fully convolutional segmentor with ``backbone``/``decode_head`` names."""

    def __init__(self, num_classes: int = 19, width: int = 64) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        )  # fmt: skip
        self.decode_head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, C, H, W) logits."""
        logits = self.decode_head(self.backbone(x))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


class InMemory(torch.utils.data.Dataset):
    """Normalised (3, H, W) float32 images and (H, W) int64 labels held in memory."""

    def __init__(self, items: list[dict[str, torch.Tensor]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]


def batch_stream(data: InMemory, batch: int, consumed: int, seed: int = 0) -> Iterator[dict]:
    """Endless batches of ``data`` (a seeded shuffle per epoch), after ``consumed`` batches.

    Yields:
        ``{"image": (B, 3, H, W), "label": (B, H, W)}`` on the CPU.
    """
    per_epoch = len(data) // batch
    position = consumed
    while True:
        epoch, index = divmod(position, per_epoch)
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + epoch))
        items = [data.items[i] for i in order[index * batch : (index + 1) * batch].tolist()]
        yield {
            "image": torch.stack([d["image"] for d in items]),
            "label": torch.stack([d["label"] for d in items]),
        }
        position += 1


def make_model(name: str, num_classes: int) -> nn.Module:
    """A registered segmentor, or ``convnet`` (:class:`ConvSegmentor`)."""
    return ConvSegmentor(num_classes) if name == "convnet" else build_model(name, num_classes)


def load_scenes(root: str, num: int, size: int, num_classes: int) -> InMemory:
    """Generate ``num`` long-tail scenes of ``size`` x ``size`` and load them as tensors."""
    make_synthetic(
        root, layout="cityscapes", num_train=num, num_val=0, height=size, width=size,
        num_classes=num_classes,
    )  # fmt: skip
    dataset = build_dataset(
        "cityscapes", root, "train", transforms=Compose([Normalize(), ToTensor()])
    )
    return InMemory([{"image": s["image"], "label": s["label"]} for s in dataset])


def tail_ids(data: InMemory, num_classes: int, which: str) -> list[int]:
    """The official Cityscapes tail list, or the rarest classes of the generated set."""
    if which == "official":
        return [c for c in OFFICIAL_TAIL_CLASSES["cityscapes"] if c < num_classes]
    labels = torch.stack([d["label"] for d in data.items])
    counts = torch.bincount(labels[labels != IGNORE].flatten(), minlength=num_classes)
    return sorted(split_groups(counts.numpy(), **default_rule("cityscapes"))["tail"])


def class_presence(data: InMemory, tail: list[int], batch: int) -> tuple[float, float]:
    """Mean share of tail classes present per image and per batch (of consecutive images)."""
    present = torch.stack(
        [
            torch.bincount(d["label"][d["label"] != IGNORE], minlength=256)[tail] > 0
            for d in data.items
        ]
    ).float()
    per_batch = [present[i : i + batch].amax(0).mean() for i in range(0, len(present), batch)]
    return float(present.mean()), float(torch.stack(per_batch).mean())


def fill_bank(bank: BatchTMemoryBank, data: InMemory, batch: int, device: torch.device) -> None:
    """Run the whole set through ``bank`` once (its steady state), then zero its counters."""
    for i in range(0, len(data), batch):
        items = data.items[i : i + batch]
        images = torch.stack([d["image"] for d in items]).to(device)
        labels = torch.stack([d["label"] for d in items]).to(device)
        bank(images, labels)
    bank.reset_stats()


def make_trainer(
    model: nn.Module,
    losses: Sequence[nn.Module],
    bank: Any,
    data: InMemory,
    batch: int,
    total: int,
    device: torch.device,
    amp: str,
) -> Trainer:
    """A Trainer with a fresh AdamW and the poly schedule; ``total + 1`` iterations."""
    torch.manual_seed(0)
    opt = build_adamw(model, lr=6e-5)
    schedule = PolyWarmupScheduler(opt, total + 1, warmup_iters=1)
    return Trainer(
        model,
        losses,
        opt,
        lambda consumed: batch_stream(data, batch, consumed),
        total + 1,  # one more than run: no end-of-run work inside the timed window
        StepOptions(device=device, amp=amp),
        memory_bank=bank,
        hooks=[LRSchedulerHook(schedule)],
    )


def timed_run(
    model: nn.Module,
    init_state: dict[str, torch.Tensor],
    losses: Sequence[nn.Module],
    bank: Any,
    data: InMemory,
    *,
    batch: int,
    warmup: int,
    iters: int,
    device: torch.device,
    amp: str = "none",
) -> dict[str, Any]:
    """One Trainer run from ``init_state``: ``warmup`` untimed, then ``iters`` timed iterations.

    Returns:
        ``s_per_iter``, ``peak_mib`` (CUDA peak allocated over the whole run, else None),
        ``pastes_per_iter``, ``stored_per_iter`` (bank counters of the timed window) and
        ``trainer``.
    """
    model.load_state_dict(init_state)
    trainer = make_trainer(model, losses, bank, data, batch, warmup + iters, device, amp)
    cuda = device.type == "cuda"
    if cuda:
        gc.collect()
        torch.cuda.empty_cache()
    with PeakMemory(device) if cuda else nullcontext() as mem:
        trainer.train(stop_at=warmup)  # untimed: allocations, AdamW state, autotuning
        if bank is not None:
            bank.reset_stats()
        with Stopwatch(device) as watch:
            trainer.train(stop_at=warmup + iters)
    stats = bank.stats() if bank is not None else {}
    return {
        "s_per_iter": watch.seconds / iters,
        "peak_mib": mem.peak_bytes / 2**20 if cuda else None,
        "pastes_per_iter": stats.get("pastes", 0) / iters,
        "stored_per_iter": stats.get("stored", 0) / iters,
        "trainer": trainer,
    }


def aucseg_parts(
    num_classes: int, tail: list[int], device: torch.device, auc_weight: float = 1.0, **bank_kw
) -> tuple[list[nn.Module], list[nn.Module], BatchTMemoryBank]:
    """CE losses, AUCSeg losses (Square AUC + CE) and the batch memory bank (``bank_kw``:
    memory_size, p_sample, p_resize; default 5, 1, 1)."""
    ce = [build_loss("cross_entropy", num_classes).to(device)]
    auc = [
        build_loss("square_auc", num_classes, loss_weight=auc_weight).to(device),
        build_loss("cross_entropy", num_classes).to(device),
    ]
    options = {"memory_size": 5, "p_sample": 1.0, "p_resize": 1.0, **bank_kw}
    bank = BatchTMemoryBank(num_classes, tail, seed=0, **options)
    return ce, auc, bank


def alternate_rounds(
    model: nn.Module, configs: dict[str, tuple[list, Any]], data: InMemory, repeats: int, **run_kw
) -> dict[str, dict[str, list]]:
    """``repeats`` rounds of :func:`timed_run` per configuration, the order swapped every round.

    Returns:
        ``{name: {"s": [...], "peak": [...], "pastes": [...], "stored": [...]}}``.
    """
    init_state = copy.deepcopy(model.state_dict())
    results = {name: {"s": [], "peak": [], "pastes": [], "stored": []} for name in configs}
    names = list(configs)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            losses, bank = configs[name]
            res = timed_run(model, init_state, losses, bank, data, **run_kw)
            for key, field in (("s", "s_per_iter"), ("peak", "peak_mib")):
                results[name][key].append(res[field])
            results[name]["pastes"].append(res["pastes_per_iter"])
            results[name]["stored"].append(res["stored_per_iter"])
            print(f"  round {r + 1} {name:6s} {res['s_per_iter'] * 1e3:8.1f} ms/iter", flush=True)
            del res  # frees the trainer (optimizer state) before the next run's peak is taken
    model.load_state_dict(init_state)
    return results


def bench_ce_vs_aucseg(
    model: nn.Module, data: InMemory, tail: list[int], args: argparse.Namespace
) -> dict[str, Any]:
    """Alternating CE / AUCSeg rounds; returns the per-configuration results."""
    device = torch.device(args.device)
    ce, auc, bank = aucseg_parts(args.classes, tail, device)
    fill_bank(bank, data, args.batch, device)
    run_kw = {"batch": args.batch, "warmup": args.warmup, "iters": args.iters, "device": device}
    configs = {"CE": (ce, None), "AUCSeg": (auc, bank)}
    results = alternate_rounds(model, configs, data, args.repeats, amp=args.amp, **run_kw)
    return {"results": results, "losses": auc, "bank": bank}


def bench_breakdown(
    model: nn.Module,
    data: InMemory,
    losses: list[nn.Module],
    bank: BatchTMemoryBank,
    args: argparse.Namespace,
) -> list[tuple[str, float]]:
    """Milliseconds of each loss's forward+backward on real logits and of one bank call."""
    device = torch.device(args.device)
    items = data.items[: args.batch]
    images = torch.stack([d["image"] for d in items]).to(device)
    labels = torch.stack([d["label"] for d in items]).to(device)
    model.train()
    with torch.no_grad():
        logits = model(images).float()
    reps = args.breakdown_repeats

    def median_ms(fn) -> float:
        return time_call(fn, device, warmup=1, repeats=reps).median_ms

    rows = []
    for loss in losses:

        def fwd_bwd(loss=loss) -> None:
            loss(logits.detach().requires_grad_(True), labels).backward()

        def fwd(loss=loss) -> None:
            with torch.no_grad():
                loss(logits, labels)

        name = type(loss).__name__
        rows += [(f"{name} forward", median_ms(fwd))]
        rows += [(f"{name} forward+backward", median_ms(fwd_bwd))]
    work = copy.deepcopy(bank)  # leave the benchmark's bank untouched
    t_bank = median_ms(lambda: work(images.clone(), labels.clone()))
    t_clone = median_ms(lambda: (images.clone(), labels.clone()))
    rows.append(("BatchTMemoryBank call (full bank)", max(t_bank - t_clone, 0.0)))
    return rows


# ----------------------------------------------------------------------------- engine overhead


def bare_loop(model: nn.Module, data: InMemory, args: argparse.Namespace) -> float:
    """Seconds per iteration of a plain PyTorch CE loop (same batches as the Trainer)."""
    device = torch.device(args.device)
    opt = build_adamw(model, lr=6e-5)
    loss_fn = build_loss("cross_entropy", args.classes)
    stream = batch_stream(data, args.batch, 0)
    model.train()

    def one_step() -> None:
        b = next(stream)
        opt.zero_grad(set_to_none=True)
        logits = model(b["image"].to(device)).float()
        loss_fn(logits, b["label"].to(device)).backward()
        opt.step()

    for _ in range(args.warmup):
        one_step()
    with Stopwatch(device) as watch:
        for _ in range(args.iters):
            one_step()
    return watch.seconds / args.iters


def bench_engine_overhead(
    model: nn.Module, data: InMemory, args: argparse.Namespace, tmp: str
) -> dict[str, float]:
    """Trainer (CE) against a bare loop, alternating; plus checkpoint write/load."""
    device = torch.device(args.device)
    init_state = copy.deepcopy(model.state_dict())
    ce = [build_loss("cross_entropy", args.classes)]
    run_kw = {"batch": args.batch, "warmup": args.warmup, "iters": args.iters, "device": device}
    bare, engine = [], []
    for _ in range(args.repeats):
        model.load_state_dict(init_state)
        bare.append(bare_loop(model, data, args))
        res = timed_run(model, init_state, ce, None, data, **run_kw)  # no autocast, as bare
        engine.append(res["s_per_iter"])
    path = Path(tmp) / "last.pth"
    state = res["trainer"].state_dict()
    save = time_call(lambda: save_atomic(state, path), "cpu", warmup=0, repeats=1)
    load = time_call(lambda: load_checkpoint_file(path), "cpu", warmup=0, repeats=1)
    model.load_state_dict(init_state)
    return {
        "bare": statistics.median(bare),
        "engine": statistics.median(engine),
        "save_s": save.best,
        "load_s": load.best,
        "size_mib": path.stat().st_size / 2**20,
    }


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="segnext_tiny", help="segnext_* / deeplabv3plus_* / convnet"
    )
    parser.add_argument("--size", type=int, default=256, help="square crop side")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--images", type=int, default=16, help="generated training images")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations per run")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per run")
    parser.add_argument("--repeats", type=int, default=7, help="alternating rounds (median)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--tail", default="official", choices=["official", "generated"],
        help="bank tail ids: official Cityscapes list or the rarest classes of the generated set",
    )  # fmt: skip
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false")
    parser.add_argument("--breakdown-repeats", type=int, default=5)
    parser.add_argument(
        "--engine-overhead", action="store_true",
        help="also time the Trainer against a bare PyTorch loop (CE) and checkpoint I/O",
    )  # fmt: skip
    return parser.parse_args(argv)


def print_results(res: dict[str, dict[str, list]]) -> float:
    """The CE / AUCSeg table; returns the CE median seconds per iteration."""
    ce, auc = statistics.median(res["CE"]["s"]), statistics.median(res["AUCSeg"]["s"])
    print()
    print("| configuration | ms/iter (median) | min-max | bank pastes/iter | peak GPU MiB |")
    print("|---|---|---|---|---|")
    for name, med in (("CE", ce), ("AUCSeg", auc)):
        r = res[name]
        peaks = [p for p in r["peak"] if p is not None]
        peak = f"{max(peaks):.0f}" if peaks else "n/a (CPU)"
        pastes = f"{statistics.mean(r['pastes']):.2f}" if name == "AUCSeg" else "-"
        print(
            f"| {name} | {1e3 * med:.1f} | {1e3 * min(r['s']):.1f}-{1e3 * max(r['s']):.1f} | "
            f"{pastes} | {peak} |"
        )
    ratios = [a / c for a, c in zip(res["AUCSeg"]["s"], res["CE"]["s"], strict=True)]
    paired = statistics.median(ratios)
    print(
        f"| AUCSeg / CE (ratio of medians) | {auc / ce:.3f} (overhead "
        f"{100 * (auc / ce - 1):+.1f} %) | per-round ratios {min(ratios):.3f}-"
        f"{max(ratios):.3f} | | |"
    )
    print(
        f"| AUCSeg / CE (median of per-round ratios) | {paired:.3f} (overhead "
        f"{100 * (paired - 1):+.1f} %) | | | |"
    )
    return ce


def print_breakdown(rows: list[tuple[str, float]], ce: float, repeats: int) -> None:
    """The per-part table and the extra work of AUCSeg against the CE step."""
    print()
    print(f"breakdown (one batch, median of {repeats}):")
    print("| part | ms |")
    print("|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} |")
    part = dict(rows)
    extra = part["SquareAUCLoss forward+backward"] + part["BatchTMemoryBank call (full bank)"]
    print(
        f"extra work of AUCSeg per iteration (AUC loss forward+backward + bank): "
        f"{extra:.1f} ms = {extra / (10 * ce):.1f} % of the CE step"
    )


def print_engine_overhead(eo: dict[str, float]) -> None:
    """The Trainer-against-bare-loop table."""
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| bare PyTorch step (CE) | {eo['bare'] * 1e3:.1f} ms |")
    print(f"| Trainer step (CE) | {eo['engine'] * 1e3:.1f} ms |")
    print(f"| engine overhead | {(eo['engine'] - eo['bare']) / eo['bare'] * 100:+.1f} % |")
    print(f"| checkpoint write (atomic, {eo['size_mib']:.1f} MiB) | {eo['save_s'] * 1e3:.1f} ms |")
    print(f"| checkpoint load (weights_only) | {eo['load_s'] * 1e3:.1f} ms |")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        data = load_scenes(f"{tmp}/data", args.images, args.size, args.classes)
        tail = tail_ids(data, args.classes, args.tail)
        per_image, per_batch = class_presence(data, tail, args.batch)
        torch.manual_seed(0)
        model = make_model(args.model, args.classes).to(device)
        print(
            f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
            f"model {args.model}, {args.size}x{args.size}, batch {args.batch}, amp {args.amp}; "
            f"{args.repeats} alternating rounds x ({args.warmup} warm-up + {args.iters} timed) "
            f"iterations; tail ids {tail} (present: {100 * per_image:.0f}% per image, "
            f"{100 * per_batch:.0f}% per batch)",
            flush=True,
        )
        out = bench_ce_vs_aucseg(model, data, tail, args)
        ce = print_results(out["results"])
        if args.breakdown:
            rows = bench_breakdown(model, data, out["losses"], out["bank"], args)
            print_breakdown(rows, ce, args.breakdown_repeats)
        if args.engine_overhead:
            print_engine_overhead(bench_engine_overhead(model, data, args, tmp))


if __name__ == "__main__":
    main()
