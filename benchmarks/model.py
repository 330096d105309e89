"""Throughput of the registered segmentors: forward and forward+backward images/s.

Examples:
    python benchmarks/model.py --models segnext_tiny segnext_small --size 512 --batch 1
    python benchmarks/model.py --device cuda --models segnext_large --batch 4

Prints a Markdown table (one row per model x precision x memory format). Forward runs in eval
mode under ``torch.no_grad``; forward+backward in train mode with a sum-of-logits loss. Timing:
``benchmarks/_timing.py`` (synchronised on CUDA; best of ``--iters`` after ``--warmup``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from _timing import time_call

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from aucseg.models import MODELS, build_model


def _best_s(fn: Callable[[], None], device: torch.device, warmup: int, iters: int) -> float:
    """Best (minimum) seconds of ``fn()`` over ``iters`` runs after ``warmup`` runs.

    The minimum is the least disturbed by other processes sharing the cores.
    """
    return time_call(fn, device, warmup, iters).best


def bench(
    name: str,
    batch: int,
    size: int,
    device: torch.device,
    dtype: str,
    channels_last: bool,
    warmup: int,
    iters: int,
    backward: bool,
) -> tuple[float, float | None]:
    """Images/s of forward and (optionally) forward+backward for one configuration."""
    model = build_model(name, num_classes=150).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    images = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")

    def forward() -> None:
        with torch.no_grad(), autocast:
            model(images)

    def train_step() -> None:
        with autocast:
            loss = model(images).float().sum()
        loss.backward()
        model.zero_grad(set_to_none=True)

    model.eval()
    fwd = batch / _best_s(forward, device, warmup, iters)
    if not backward:
        return fwd, None
    model.train()
    return fwd, batch / _best_s(train_step, device, warmup, iters)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["segnext_tiny", "segnext_small"])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=None, help="default: 1 on CPU, 4 on GPU")
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--channels-last", choices=["no", "yes", "both"], default="both")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--no-backward", action="store_true", help="forward only")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {sorted(MODELS)}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda given but no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = args.batch or (4 if device.type == "cuda" else 1)
    layouts = {"no": [False], "yes": [True], "both": [False, True]}[args.channels_last]
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    print(f"batch {batch}, {args.size}x{args.size}, best of {args.iters} after {args.warmup}\n")
    print("| model | dtype | channels_last | forward img/s | fwd+bwd img/s |")
    print("|---|---|---|---|---|")
    for name in args.models:
        for dtype in args.dtypes:
            for cl in layouts:
                torch.manual_seed(0)
                fwd, train = bench(
                    name, batch, args.size, device, dtype, cl, args.warmup, args.iters,
                    not args.no_backward,
                )  # fmt: skip
                tr = "-" if train is None else f"{train:.2f}"
                print(f"| {name} | {dtype} | {cl} | {fwd:.2f} | {tr} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
