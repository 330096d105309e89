"""``aucseg models``: registered models, their options and parameter counts."""

from __future__ import annotations

import argparse

from aucseg.models import MODELS, build_model, count_parameters, model_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``aucseg models``."""
    parser.description = (
        "List the registered models with their options (defaults) and parameter counts. "
        "Any other model: model.name: package.module:factory, or model.name: huggingface."
    )
    parser.add_argument(
        "--num-classes", type=int, default=150, help="classes for the parameter count (150)"
    )


def _options(name: str) -> str:
    opts = model_options(name)
    return ", ".join(f"{k}={p.default!r}" for k, p in opts.items() if p.default is not p.empty)


def run(args: argparse.Namespace) -> int:
    """Print name, parameter count and options of each registered model."""
    for name in MODELS:
        if name == "huggingface":
            print(f"{name:<22} {'-':>10}  source=<local save_pretrained dir> (any HF segmentor)")
            continue
        params = count_parameters(build_model(name, args.num_classes))
        print(f"{name:<22} {params / 1e6:>8.2f} M  {_options(name)}")
    return 0
