"""``aucseg models``: registered models, their options and parameter counts."""

from __future__ import annotations

import argparse
import inspect

import torch

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


def _options(options: dict[str, inspect.Parameter]) -> str:
    shown = [k if p.default is p.empty else f"{k}={p.default!r}" for k, p in options.items()]
    return ", ".join(shown) or "-"


def _size(name: str, num_classes: int) -> str:
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        model = build_model(name, num_classes)
    return f"{count_parameters(model) / 1e6:>8.2f} M"


def run(args: argparse.Namespace) -> int:
    """Print name, parameter count and options of each registered model (no count for a model
    that needs an option, e.g. the ``source`` of ``huggingface``)."""
    for name in MODELS:
        options = model_options(name)
        required = any(p.default is p.empty for p in options.values())
        size = f"{'-':>10}" if required else _size(name, args.num_classes)
        print(f"{name:<22} {size}  {_options(options)}")
    return 0
