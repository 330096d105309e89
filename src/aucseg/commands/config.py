"""``aucseg config CONFIG [--set ...]``: print the resolved config with every default."""

from __future__ import annotations

import argparse

import yaml

from aucseg.commands._common import add_set_argument
from aucseg.config import config_to_dict, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``aucseg config``."""
    parser.description = (
        "Validate a config and print it resolved: every option in effect, the registered "
        "factories' defaults included (what a run writes to WORK_DIR/config.yaml)."
    )
    parser.add_argument("config", help="YAML config or shipped config name")
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Print the resolved config as YAML."""
    cfg = load_config(args.config, list(args.overrides))
    print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
    return 0
