"""Hydra callbacks: checks that must run before Hydra creates any output directory."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mnist_cnn.checks import check_config
from mnist_cnn.errors import UserError


class CheckConfigFirst(Callback):
    """Reject a bad single run before Hydra makes its run directory, with one line and exit 2."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_config(config)
        except UserError as error:
            sys.exit(f"error: {error}")
