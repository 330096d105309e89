"""``aucseg configs``: the configs shipped with the package."""

from __future__ import annotations

import argparse

from aucseg.config import SHIPPED_CONFIGS, shipped_configs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""
    parser.description = "List the shipped configs (usable by name in train/test/config)."


def run(args: argparse.Namespace) -> int:
    """Print one name per line with its first comment line."""
    for name in shipped_configs():
        first = (SHIPPED_CONFIGS / name).read_text().splitlines()[:1]
        note = first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
        print(f"{name[:-5]:<48} {note}")
    return 0
