"""``aucseg train CONFIG --work-dir DIR``: train from a YAML config (torchrun-aware)."""

from __future__ import annotations

import argparse

from aucseg.commands._common import add_runtime_arguments, add_set_argument, runtime_overrides
from aucseg.engine.tasks import train, train_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``aucseg train``."""
    parser.description = (
        "Train a model from a YAML config. Multi-GPU / multi-node: "
        "torchrun --nproc_per_node N -m aucseg train CONFIG --work-dir DIR. "
        "The resolved config, checkpoints/ (last.pth, best.pth), log.jsonl and tensorboard/ "
        "are written to the work dir. Ctrl-C or SIGTERM saves last.pth and exits."
    )
    parser.add_argument(
        "config",
        nargs="?",
        help="YAML config or shipped config name (not needed, and not re-read, with --resume)",
    )
    parser.add_argument("--work-dir", required=True, help="run folder (created if missing)")
    parser.add_argument("--seed", type=int, default=None, help="run seed (runtime.seed)")
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="CKPT",
        help="continue the run in --work-dir from its stored config (then --set): from CKPT, "
        "or from WORK_DIR/checkpoints/last.pth when omitted",
    )
    parser.add_argument(
        "--amp", choices=["none", "bf16", "fp16"], default=None, help="autocast (runtime.amp)"
    )
    add_runtime_arguments(parser)
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Resolve the config, then train. Exit codes: 0 done, 1 diverged, 2 bad input,
    130/143 interrupted (last.pth written)."""
    overrides = runtime_overrides(args)
    if args.seed is not None:
        overrides.append(f"runtime.seed={args.seed}")
    if args.amp is not None:
        overrides.append(f"runtime.amp={args.amp}")
    cfg, resume_from = train_config(args.config, args.work_dir, overrides, args.resume)
    summary = train(cfg, args.work_dir, resume_from)
    best = summary.get("best_metric")
    if best:
        print(f"best {best['name']} = {best['value']:.2f} at iteration {best['iteration']}")
    return 0
