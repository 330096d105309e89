"""Throughput of the runtime options ``runtime.channels_last`` and ``runtime.compile``.

For each option set, a fresh model from the same initial weights is prepared as
:func:`aucseg.engine.tasks.build_trainer` prepares it (``channels_last``: the model converted
to channels-last and :class:`~aucseg.engine.trainer.StepOptions` ``channels_last=True`` for the
images; ``compile``: the trainer steps ``torch.compile(model)``), then:

* **train step**: CE-only training steps through :class:`~aucseg.engine.trainer.Trainer` on
  random normalised images and labels;
* **inference**: :func:`aucseg.engine.inference.inference` (whole image, batch 1, eval mode,
  ``torch.inference_mode``) on a second copy prepared the same way.

The first training step and the first inference call are timed alone (they include the
compilation), then ``--warmup`` untimed ones. Measurement rounds then alternate between the
option sets (the order reversed every round, so a change of machine load hits all of them):
per round ``--iters`` steps and ``--iters`` inference calls each. Reported: the median over
rounds, and the median over rounds of the ratio to the first option set.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/runtime_options.py --threads 1
    PYTHONPATH=src python benchmarks/runtime_options.py --device cuda --model segnext_large \\
        --size 512 --batch 4 --amp bf16

Timing: ``benchmarks/_timing.py`` (synchronised on CUDA).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from _timing import Stopwatch, time_call
from aucseg.engine.inference import inference
from aucseg.engine.optim import build_adamw
from aucseg.engine.trainer import StepOptions, Trainer
from aucseg.losses import build_loss
from aucseg.models import build_model

OPTION_SETS = {
    "baseline": (False, False),
    "channels_last": (True, False),
    "compile": (False, True),
    "compile+channels_last": (True, True),
}


def random_batches(batch: int, size: int, classes: int, seed: int = 0) -> Iterator[dict]:
    """Endless batches of normal images and uniform labels (a fixed set of 4, cycled)."""
    gen = torch.Generator().manual_seed(seed)
    fixed = [
        {
            "image": torch.randn(batch, 3, size, size, generator=gen),
            "label": torch.randint(0, classes, (batch, size, size), generator=gen),
        }
        for _ in range(4)
    ]
    i = 0
    while True:
        yield fixed[i % len(fixed)]
        i += 1


def prepare(
    init: nn.Module, channels_last: bool, compile_model: bool, device: torch.device
) -> tuple[nn.Module, nn.Module]:
    """``(plain model, model the step runs)`` as ``build_trainer`` prepares them."""
    model = copy.deepcopy(init).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model, torch.compile(model) if compile_model else model


@dataclass
class Candidate:
    """One option set, prepared: its trainer, its eval model and the timings so far."""

    name: str
    trainer: Trainer
    eval_model: nn.Module
    image: torch.Tensor
    first_train_s: float
    first_infer_s: float
    train_ms: list[float] = field(default_factory=list)
    infer_ms: list[float] = field(default_factory=list)


def infer_once(model: nn.Module, image: torch.Tensor, classes: int) -> None:
    """Whole-image inference of one image."""
    with torch.inference_mode():
        inference(model, image, tuple(image.shape[-2:]), num_classes=classes)


def setup(init: nn.Module, name: str, args: argparse.Namespace) -> Candidate:
    """Prepare option set ``name``; time its first training step and first inference call
    (both include the compilation when compiling), then run the warm-up steps."""
    device = torch.device(args.device)
    channels_last, compile_model = OPTION_SETS[name]
    model, step_model = prepare(init, channels_last, compile_model, device)
    trainer = Trainer(
        step_model,
        [build_loss("cross_entropy", args.classes).to(device)],
        build_adamw(model, lr=6e-5),
        lambda consumed: random_batches(args.batch, args.size, args.classes),
        10**9,
        StepOptions(device=device, amp=args.amp, channels_last=channels_last),
    )
    with Stopwatch(device) as first_train:
        trainer.train(stop_at=1)
    trainer.train(stop_at=1 + args.warmup)
    _, eval_model = prepare(init, channels_last, compile_model, device)
    eval_model.eval()
    image = torch.randn(1, 3, args.size, args.size, device=device)
    with Stopwatch(device) as first_infer:
        infer_once(eval_model, image, args.classes)
    for _ in range(args.warmup):
        infer_once(eval_model, image, args.classes)
    return Candidate(name, trainer, eval_model, image, first_train.seconds, first_infer.seconds)


def measure_round(cand: Candidate, args: argparse.Namespace) -> None:
    """One window of ``--iters`` training steps and ``--iters`` inference calls."""
    device = torch.device(args.device)
    with Stopwatch(device) as watch:
        cand.trainer.train(stop_at=cand.trainer.iteration + args.iters)
    cand.train_ms.append(1e3 * watch.seconds / args.iters)
    run = lambda: infer_once(cand.eval_model, cand.image, args.classes)  # noqa: E731
    cand.infer_ms.append(time_call(run, device, 0, args.iters).median_ms)


def paired_ratio(values: list[float], base: list[float]) -> float:
    """Median over rounds of ``values[r] / base[r]``."""
    return statistics.median(v / b for v, b in zip(values, base, strict=True))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="segnext_tiny")
    parser.add_argument("--size", type=int, default=128, help="square image side")
    parser.add_argument("--batch", type=int, default=2, help="training batch")
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps/calls after the first")
    parser.add_argument("--iters", type=int, default=3, help="steps (and calls) per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating measurement rounds")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--options",
        nargs="+",
        choices=list(OPTION_SETS),
        default=list(OPTION_SETS),
        help="option sets, the first is the reference of the ratios",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Prepare every option set, alternate measurement rounds, print one row per set."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    init = build_model(args.model, args.classes)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
        f"{args.model}, {args.size}x{args.size}, train batch {args.batch}, amp {args.amp}; "
        f"{args.rounds} alternating rounds of {args.iters} steps / calls; load average {load}\n"
    )
    cands = [setup(init, name, args) for name in args.options]
    for r in range(args.rounds):
        for cand in cands if r % 2 == 0 else cands[::-1]:
            measure_round(cand, args)
    base = cands[0]
    print(
        f"| options | train: first step s | train ms/step | vs {base.name} "
        f"| inference: first call s | inference ms/image | vs {base.name} |"
    )
    print("|---|---|---|---|---|---|---|")
    for c in cands:
        train, infer = statistics.median(c.train_ms), statistics.median(c.infer_ms)
        print(
            f"| {c.name} | {c.first_train_s:.1f} | {train:.1f} "
            f"| {paired_ratio(c.train_ms, base.train_ms):.3f} | {c.first_infer_s:.1f} "
            f"| {infer:.1f} | {paired_ratio(c.infer_ms, base.infer_ms):.3f} |"
        )
    print(f"\nload average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
