"""Training-step benchmark: the engine's Trainer against a bare PyTorch loop, and checkpoints.

Both loops run the same model, CE loss, AdamW groups and batches, so the difference is the
engine's overhead (seeded resumable sampling, lr schedule, per-step finite check, logging).
Also times an atomic ``last.pth`` write and a ``weights_only`` load.

    python benchmarks/train_step.py                       # SegNeXt-T when aucseg.models exists
    python benchmarks/train_step.py --model convnet       # small built-in conv segmentor
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from aucseg.engine import (
    PolyWarmupScheduler,
    Trainer,
    build_adamw,
    load_checkpoint_file,
    make_train_loader,
)

WARMUP = 3  # untimed iterations before each measurement


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


class CE(nn.Module):
    loss_name = "loss_ce"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, ignore_index=255, reduction="none").mean()


class Tensors(torch.utils.data.Dataset):
    def __init__(self, n: int, size: int, num_classes: int) -> None:
        self.images = torch.randn(n, 3, size, size)
        self.labels = torch.randint(0, num_classes, (n, size, size))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": self.labels[i]}


def make_model(name: str, num_classes: int) -> nn.Module:
    if name == "convnet":
        return ConvSegmentor(num_classes)
    from aucseg.models import build_model

    return build_model(name, num_classes)


def bare_loop(model, data, batch, iters) -> float:
    opt = build_adamw(model, lr=6e-5)
    loss_fn = CE()
    loader = iter(torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True))
    for i in range(WARMUP + iters):
        if i == WARMUP:
            tic = time.perf_counter()
        b = next(loader)
        opt.zero_grad(set_to_none=True)
        loss_fn(model(b["image"]), b["label"]).backward()
        opt.step()
    return (time.perf_counter() - tic) / iters


def engine_loop(model, data, batch, iters, work_dir) -> tuple[float, Trainer]:
    opt = build_adamw(model, lr=6e-5)
    trainer = Trainer(
        model, [CE()], opt, PolyWarmupScheduler(opt, WARMUP + iters + 1, warmup_iters=1),
        lambda consumed: make_train_loader(data, batch, consumed),
        WARMUP + iters + 1, work_dir, log_interval=10, checkpoint_interval=10**9, tensorboard=False,
        progress=False,
    )  # fmt: skip
    trainer.max_iters = WARMUP + iters + 1  # no final checkpoint inside the timed region
    trainer.train(stop_at=WARMUP)
    tic = time.perf_counter()
    trainer.train(stop_at=WARMUP + iters)
    return (time.perf_counter() - tic) / iters, trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="segnext_tiny", help="segnext_* or convnet")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds (median)")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = Tensors(args.batch * (args.iters + WARMUP), args.size, args.classes)
    bare_times, engine_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # alternate to spread the noise of shared cores
            model = make_model(args.model, args.classes)
            bare_times.append(bare_loop(model, data, args.batch, args.iters))
            model = make_model(args.model, args.classes)
            t_eng, trainer = engine_loop(model, data, args.batch, args.iters, f"{tmp}/{r}")
            engine_times.append(t_eng)
        tic = time.perf_counter()
        path = trainer.save("last.pth")
        save_s = time.perf_counter() - tic
        tic = time.perf_counter()
        load_checkpoint_file(Path(path))
        load_s = time.perf_counter() - tic
        size_mb = Path(path).stat().st_size / 2**20
    bare, eng = statistics.median(bare_times), statistics.median(engine_times)
    print(
        f"model {args.model}, {args.size}x{args.size}, batch {args.batch}, "
        f"median of {args.repeats} x {args.iters} iterations"
    )
    print("| measure | value |")
    print("|---|---|")
    print(f"| bare PyTorch step | {bare * 1e3:.1f} ms |")
    print(f"| Trainer step | {eng * 1e3:.1f} ms |")
    print(f"| engine overhead | {(eng - bare) / bare * 100:+.1f} % |")
    print(f"| checkpoint write (atomic, {size_mb:.1f} MiB) | {save_s * 1e3:.1f} ms |")
    print(f"| checkpoint load (weights_only) | {load_s * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
