"""Command-line arguments for the entry points that read a finished run (`key=value`, as Hydra spells them)."""

from __future__ import annotations

import sys

from omegaconf import DictConfig, OmegaConf


def parse_arguments(argv: list[str], required: tuple[str, ...], usage: str) -> DictConfig:
    """`key=value` arguments; print the usage line and exit when a required key is missing."""
    args = OmegaConf.from_cli(argv)
    if any(key not in args for key in required):
        sys.exit(usage)
    return args
