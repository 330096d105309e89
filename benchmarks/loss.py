"""Forward+backward time and peak extra memory of the AUC losses, side by side.

Compares, on the same logits: aucseg's losses, a re-statement of the official per-class loop
(spec §2.1-2.2: dense one-hot, Python loop over classes with a host sync each; benchmark
baseline only) and ``F.cross_entropy``.

    PYTHONPATH=src python benchmarks/loss.py                 # CPU, (2, 150, 256, 256)
    PYTHONPATH=src python benchmarks/loss.py --device cuda   # (4,150,512,512), (8,171,512,512)

Timing and memory come from ``benchmarks/_timing.py``. Memory. CUDA:
``torch.cuda.max_memory_allocated`` minus the allocation before the call. CPU (no allocator
statistics): each loss is measured in a fresh child process in which glibc uses a fixed mmap
threshold (``mallopt``, set before any tensor exists), so that every allocation above 64 KiB is
mmap-ed and unmapped on free and the resident set size tracks live tensor memory; the kernel's
RSS high-water mark is reset (``/proc/self/clear_refs``) before the call and read (``VmHWM`` in
``/proc/self/status``) after it; peak minus the RSS before the call is reported (max over 3 calls
after a warm-up). Both include the gradient of the logits (one logits-size tensor).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F

from _timing import fix_malloc_threshold, measure_peak, time_call
from aucseg.losses import ExpAUCLoss, HingeAUCLoss, SquareAUCLoss

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def official_square_ovo_loop(
    logits: torch.Tensor, target: torch.Tensor, gamma: float = 1.0, ignore_index: int = 255
) -> torch.Tensor:
    """The official square/ovo loss as its code computes it (spec §2.1-2.2), for comparison."""
    num_classes = logits.shape[1]
    pred = torch.sigmoid(logits).permute(0, 2, 3, 1).reshape(-1, num_classes)  # (M, C) copy
    labels = target.reshape(-1)
    keep = labels != ignore_index
    pred, labels = pred[keep], labels[keep]  # masked copy
    assert bool(pred.max() <= 1) and bool(pred.min() >= 0) and bool(labels.min() >= 0)
    onehot = torch.stack([labels == c for c in range(num_classes)], dim=1).float()  # dense Y
    counts = onehot.sum(0)
    inv_count = 1.0 / counts[labels]  # 1 / N_{y[j]}
    k = (counts > 0).sum()
    loss = torch.zeros((), device=logits.device)
    for i in range(num_classes):
        if counts[i] == 0:  # host sync per class
            continue
        pos, score = onehot[:, i], pred[:, i]
        neg = 1.0 - pos
        a = (k - 1) / counts[i] * (pos * (score - gamma) ** 2).sum()
        a = a + (neg * score**2 * inv_count).sum()
        b = (pos * (score - gamma)).sum() / counts[i] * (neg * score * inv_count).sum()
        loss = loss + 0.5 * a - b
    return loss / (k * (k - 1))


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``F.cross_entropy`` with ignore_index 255."""
    return F.cross_entropy(logits, target, ignore_index=255)


def make_losses(num_classes: int, with_loop: bool, with_pairwise: bool) -> dict[str, LossFn]:
    """Name -> callable(logits, target), in table order."""
    losses: dict[str, LossFn] = {
        "F.cross_entropy": cross_entropy,
        "SquareAUCLoss ovo": SquareAUCLoss(num_classes),
        "SquareAUCLoss ova": SquareAUCLoss(num_classes, transform="ova"),
        "ExpAUCLoss ovo": ExpAUCLoss(num_classes),
        "HingeAUCLoss official ovo": HingeAUCLoss(num_classes, form="official"),
    }
    if with_pairwise:
        losses["HingeAUCLoss pairwise ovo"] = HingeAUCLoss(num_classes)
    if with_loop:
        losses["official per-class loop (square ovo)"] = official_square_ovo_loop
    return losses


def make_inputs(shape: tuple[int, ...], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and long-tailed labels (Zipf-like class frequencies, ~5% ignored)."""
    gen = torch.Generator().manual_seed(0)
    batch, num_classes, height, width = shape
    logits = torch.randn(shape, generator=gen)
    freq = 1.0 / torch.arange(1, num_classes + 1, dtype=torch.float64)
    target = torch.multinomial(freq, batch * height * width, True, generator=gen)
    target = target.reshape(batch, height, width)
    target[torch.rand(batch, height, width, generator=gen) < 0.05] = 255
    return logits.to(device).requires_grad_(), target.to(device)


def step(fn: LossFn, logits: torch.Tensor, target: torch.Tensor) -> None:
    """One forward+backward; frees the gradient afterwards."""
    fn(logits, target).backward()
    logits.grad = None


def time_ms(fn: LossFn, logits: torch.Tensor, target: torch.Tensor, repeats: int) -> float:
    """Best wall time of forward+backward in ms over ``repeats`` calls, after a warm-up call.

    The minimum, not the median: on a machine shared with other jobs it is the least disturbed.
    """
    return time_call(lambda: step(fn, logits, target), logits.device, 1, repeats).best_ms


def measure_memory(
    name: str, fn: LossFn, logits: torch.Tensor, target: torch.Tensor, args: argparse.Namespace
) -> int:
    """Peak extra bytes of one loss: in-process on CUDA, in a fresh child process on CPU."""
    if logits.device.type == "cuda":
        step(fn, logits, target)
        return measure_peak(lambda: step(fn, logits, target), logits.device, calls=3).extra_bytes
    cmd = [sys.executable, __file__, "--memory-of", name, "--threads", str(args.threads)]
    cmd += ["--shape", *map(str, logits.shape)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1])


def memory_child(args: argparse.Namespace) -> int:
    """Child process of :func:`measure_memory`: print the peak extra bytes of one loss."""
    fix_malloc_threshold()  # before any tensor is allocated
    torch.set_num_threads(args.threads)
    shape = tuple(args.shape[0])
    logits, target = make_inputs(shape, "cpu")
    fn = make_losses(shape[1], True, True)[args.memory_of]
    step(fn, logits, target)  # warm-up: one-time allocations
    runs = 1 if args.memory_of.startswith("official") else 3
    print(measure_peak(lambda: step(fn, logits, target), "cpu", calls=runs).extra_bytes)
    return 0


def check_baseline(logits: torch.Tensor, target: torch.Tensor) -> None:
    """The per-class loop computes the same loss as SquareAUCLoss (sanity check)."""
    with torch.no_grad():
        ours = SquareAUCLoss(logits.shape[1])(logits, target)
        loop = official_square_ovo_loop(logits, target)
    if not torch.allclose(ours, loop, rtol=1e-4):
        raise RuntimeError(f"baseline mismatch: {ours.item()} vs {loop.item()}")


def bench_shape(shape: tuple[int, ...], args: argparse.Namespace) -> list[str]:
    """Markdown table rows for one logits shape."""
    logits, target = make_inputs(shape, args.device)
    if not args.no_loop:
        check_baseline(logits, target)
    losses = make_losses(shape[1], not args.no_loop, not args.no_pairwise)
    times = {}
    for name, fn in losses.items():
        reps = args.loop_repeats if name.startswith("official") else args.repeats
        times[name] = time_ms(fn, logits, target, reps)
        print(f"  {name}: {times[name]:.1f} ms", file=sys.stderr)
    mems = {name: measure_memory(name, fn, logits, target, args) for name, fn in losses.items()}
    logits_bytes = logits.numel() * logits.element_size()
    ce, loop = times["F.cross_entropy"], times.get("official per-class loop (square ovo)")
    rows = []
    for name in losses:
        speedup = f"{loop / times[name]:.1f}x" if loop else "-"
        rows.append(
            f"| {tuple(shape)} | {name} | {times[name]:.1f} | {times[name] / ce:.2f}x | {speedup} "
            f"| {mems[name] / 2**20:.0f} | {mems[name] / logits_bytes:.2f}x |"
        )
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--shape", type=int, nargs=4, action="append", metavar=("B", "C", "H", "W"),
        help="logits shape (repeatable); default (2,150,256,256) on CPU, "
        "(4,150,512,512) and (8,171,512,512) on CUDA",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per loss (best kept)")
    parser.add_argument("--loop-repeats", type=int, default=2, help="timed calls, per-class loop")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--no-loop", action="store_true", help="skip the per-class loop")
    parser.add_argument("--no-pairwise", action="store_true", help="skip the pairwise hinge")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # internal: child process mode
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a markdown table."""
    args = parse_args(argv)
    if args.memory_of:
        return memory_child(args)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    shapes = args.shape or (
        [[2, 150, 256, 256]] if args.device == "cpu" else [[4, 150, 512, 512], [8, 171, 512, 512]]
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"cpus={os.cpu_count()} load average at start: {load}"
    )
    print(
        "| logits (B, C, H, W) | loss | fwd+bwd ms | vs CE | vs loop | peak extra MiB | x logits |"
    )
    print("|---|---|---|---|---|---|---|")
    for shape in shapes:
        for row in bench_shape(tuple(shape), args):
            print(row)
    print(f"load average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
