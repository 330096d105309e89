"""``aucseg train CONFIG --work-dir DIR``: train from a YAML config (torchrun-aware)."""

from __future__ import annotations

import argparse
import sys

from aucseg.commands._common import add_set_argument, fail, load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``aucseg train``."""
    parser.description = (
        "Train a model from a YAML config. Multi-GPU / multi-node: "
        "torchrun --nproc_per_node N -m aucseg train CONFIG --work-dir DIR. "
        "The resolved config, checkpoints/ (last.pth, best.pth), log.jsonl and tensorboard/ "
        "are written to the work dir."
    )
    parser.add_argument("config", help="YAML config, e.g. configs/synthetic_aucseg_segnext_t.yaml")
    parser.add_argument("--work-dir", required=True, help="run folder (created if missing)")
    parser.add_argument("--seed", type=int, default=None, help="run seed (runtime.seed)")
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="CKPT",
        help="continue a run: from CKPT, or from WORK_DIR/checkpoints/last.pth when omitted",
    )
    parser.add_argument(
        "--amp", choices=["none", "bf16", "fp16"], default=None, help="autocast (runtime.amp)"
    )
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Validate the config, then train. Exit codes: 0 done, 1 stopped on NaN, 2 bad input."""
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"runtime.seed={args.seed}")
    if args.amp is not None:
        overrides.append(f"runtime.amp={args.amp}")
    cfg = load("train", args.config, overrides)
    if isinstance(cfg, int):
        return cfg
    from aucseg.engine.build import train_from_config
    from aucseg.engine.trainer import NonFiniteLossError

    try:
        summary = train_from_config(cfg, args.work_dir, resume=args.resume)
    except NonFiniteLossError as exc:
        print(f"aucseg train: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        return fail("train", exc)
    best = summary.get("best_metric")
    if best:
        print(f"best {best['name']} = {best['value']:.2f} at iteration {best['iteration']}")
    return 0
