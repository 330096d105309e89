"""Training-step benchmark: CE-only versus AUCSeg (Square AUC + CE + T-Memory Bank).

Both configurations run through :class:`aucseg.engine.Trainer` with the same model (same
initial weights), the same AdamW groups and the same batches, which come from generated
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
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aucseg.augment import BatchTMemoryBank
from aucseg.data import OFFICIAL_TAIL_CLASSES, build_dataset
from aucseg.data.stats import default_rule, split_groups
from aucseg.data.synthetic import make_synthetic
from aucseg.data.transforms import Compose, Normalize, ToTensor
from aucseg.engine import (
    PolyWarmupScheduler,
    Trainer,
    build_adamw,
    load_checkpoint_file,
    make_train_loader,
)
from aucseg.losses import build_loss

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


def make_model(name: str, num_classes: int) -> nn.Module:
    if name == "convnet":
        return ConvSegmentor(num_classes)
    from aucseg.models import build_model

    return build_model(name, num_classes)


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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_run(
    model: nn.Module,
    init_state: dict[str, torch.Tensor],
    losses: list[nn.Module],
    bank: Any,
    data: InMemory,
    args: argparse.Namespace,
    work_dir: str,
) -> dict[str, Any]:
    """One Trainer run from ``init_state``: warm-up, then ``args.iters`` timed iterations."""
    device = torch.device(args.device)
    model.load_state_dict(init_state)
    torch.manual_seed(0)
    opt = build_adamw(model, lr=6e-5)
    total = args.warmup + args.iters
    trainer = Trainer(
        model, losses, opt, PolyWarmupScheduler(opt, total + 1, warmup_iters=1),
        lambda consumed: make_train_loader(data, args.batch, consumed, seed=0),
        total + 1, work_dir, device=device, amp=args.amp, memory_bank=bank,
        log_interval=10**9, checkpoint_interval=10**9, tensorboard=False, progress=False,
    )  # fmt: skip
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    trainer.train(stop_at=args.warmup)  # untimed: allocations, AdamW state, autotuning
    sync(device)
    tic = time.perf_counter()
    out = trainer.train(stop_at=total)  # max_iters = total + 1: no checkpoint is written
    sync(device)
    seconds = (time.perf_counter() - tic) / args.iters
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    log = out["last_log"]  # window = the timed iterations (the warm-up call logged its own)
    return {
        "s_per_iter": seconds,
        "peak_mib": peak,
        "pastes_per_iter": log.get("bank/pastes", 0) / args.iters,
        "stored_per_iter": log.get("bank/stored", 0) / args.iters,
        "trainer": trainer,
    }


def bench_ce_vs_aucseg(
    model: nn.Module, data: InMemory, tail: list[int], args: argparse.Namespace, tmp: str
) -> dict[str, Any]:
    """Alternating CE / AUCSeg rounds; returns the per-configuration results."""
    device = torch.device(args.device)
    init_state = copy.deepcopy(model.state_dict())
    ce = [build_loss("cross_entropy", args.classes).to(device)]
    auc = [
        build_loss("square_auc", args.classes, loss_weight=1.0).to(device),
        build_loss("cross_entropy", args.classes).to(device),
    ]
    bank = BatchTMemoryBank(args.classes, tail, memory_size=5, p_sample=1.0, p_resize=1.0, seed=0)
    for i in range(0, len(data), args.batch):  # fill the bank: it is timed in its steady state
        items = data.items[i : i + args.batch]
        images = torch.stack([d["image"] for d in items]).to(device)
        labels = torch.stack([d["label"] for d in items]).to(device)
        bank(images, labels)
    bank.reset_stats()
    results: dict[str, dict[str, list]] = {
        name: {"s": [], "peak": [], "pastes": [], "stored": []} for name in ("CE", "AUCSeg")
    }
    configs = {"CE": (ce, None), "AUCSeg": (auc, bank)}
    for r in range(args.repeats):
        order = ("CE", "AUCSeg") if r % 2 == 0 else ("AUCSeg", "CE")
        for name in order:
            losses, b = configs[name]
            res = timed_run(model, init_state, losses, b, data, args, f"{tmp}/{name}_{r}")
            del res["trainer"]
            results[name]["s"].append(res["s_per_iter"])
            results[name]["peak"].append(res["peak_mib"])
            results[name]["pastes"].append(res["pastes_per_iter"])
            results[name]["stored"].append(res["stored_per_iter"])
            print(f"  round {r + 1} {name:6s} {res['s_per_iter'] * 1e3:8.1f} ms/iter", flush=True)
    model.load_state_dict(init_state)
    return {"results": results, "losses": auc, "bank": bank}


def time_call(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        tic = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


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
    rows = []
    for loss in losses:

        def fwd_bwd(loss=loss) -> None:
            x = logits.detach().requires_grad_(True)
            loss(x, labels).backward()

        def fwd(loss=loss) -> None:
            with torch.no_grad():
                loss(logits, labels)

        name = type(loss).__name__
        rows.append((f"{name} forward", 1e3 * time_call(fwd, device, args.breakdown_repeats)))
        rows.append(
            (f"{name} forward+backward", 1e3 * time_call(fwd_bwd, device, args.breakdown_repeats))
        )
    work = copy.deepcopy(bank)  # leave the benchmark's bank untouched

    def bank_call() -> None:
        work(images.clone(), labels.clone())

    def clone_only() -> None:
        images.clone(), labels.clone()

    t_bank = time_call(bank_call, device, args.breakdown_repeats)
    t_clone = time_call(clone_only, device, args.breakdown_repeats)
    rows.append(("BatchTMemoryBank call (full bank)", 1e3 * max(t_bank - t_clone, 0.0)))
    return rows


# ----------------------------------------------------------------------------- engine overhead


def bare_loop(model, data, args) -> float:
    device = torch.device(args.device)
    opt = build_adamw(model, lr=6e-5)
    loss_fn = build_loss("cross_entropy", args.classes)
    loader = iter(torch.utils.data.DataLoader(data, batch_size=args.batch, shuffle=True))
    model.train()
    for i in range(args.warmup + args.iters):
        if i == args.warmup:
            sync(device)
            tic = time.perf_counter()
        try:
            b = next(loader)
        except StopIteration:
            loader = iter(torch.utils.data.DataLoader(data, batch_size=args.batch, shuffle=True))
            b = next(loader)
        opt.zero_grad(set_to_none=True)
        logits = model(b["image"].to(device)).float()
        loss_fn(logits, b["label"].to(device)).backward()
        opt.step()
    sync(device)
    return (time.perf_counter() - tic) / args.iters


def bench_engine_overhead(model, data, args, tmp) -> dict[str, float]:
    """Trainer (CE) against a bare loop, alternating; plus checkpoint write/load."""
    init_state = copy.deepcopy(model.state_dict())
    ce = [build_loss("cross_entropy", args.classes)]
    bare, engine = [], []
    amp, args.amp = args.amp, "none"  # the bare loop has no autocast
    for r in range(args.repeats):
        model.load_state_dict(init_state)
        bare.append(bare_loop(model, data, args))
        res = timed_run(model, init_state, ce, None, data, args, f"{tmp}/engine_{r}")
        engine.append(res["s_per_iter"])
        trainer = res["trainer"]
    args.amp = amp
    tic = time.perf_counter()
    path = trainer.save("last.pth")
    save_s = time.perf_counter() - tic
    tic = time.perf_counter()
    load_checkpoint_file(Path(path))
    load_s = time.perf_counter() - tic
    model.load_state_dict(init_state)
    return {
        "bare": statistics.median(bare),
        "engine": statistics.median(engine),
        "save_s": save_s,
        "load_s": load_s,
        "size_mib": Path(path).stat().st_size / 2**20,
    }


# ----------------------------------------------------------------------------- main


def main() -> None:
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
    args = parser.parse_args()
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
        out = bench_ce_vs_aucseg(model, data, tail, args, tmp)
        res = out["results"]
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
        if args.breakdown:
            rows = bench_breakdown(model, data, out["losses"], out["bank"], args)
            print()
            print(f"breakdown (one batch, median of {args.breakdown_repeats}):")
            print("| part | ms |")
            print("|---|---|")
            for name, ms in rows:
                print(f"| {name} | {ms:.1f} |")
            part = dict(rows)
            extra = part["SquareAUCLoss forward+backward"]
            extra += part["BatchTMemoryBank call (full bank)"]
            print(
                f"extra work of AUCSeg per iteration (AUC loss forward+backward + bank): "
                f"{extra:.1f} ms = {extra / (10 * ce):.1f} % of the CE step"
            )
        if args.engine_overhead:
            eo = bench_engine_overhead(model, data, args, tmp)
            print()
            print("| measure | value |")
            print("|---|---|")
            print(f"| bare PyTorch step (CE) | {eo['bare'] * 1e3:.1f} ms |")
            print(f"| Trainer step (CE) | {eo['engine'] * 1e3:.1f} ms |")
            print(f"| engine overhead | {(eo['engine'] - eo['bare']) / eo['bare'] * 100:+.1f} % |")
            size, save_ms = eo["size_mib"], eo["save_s"] * 1e3
            print(f"| checkpoint write (atomic, {size:.1f} MiB) | {save_ms:.1f} ms |")
            print(f"| checkpoint load (weights_only) | {eo['load_s'] * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
