"""Hydra callbacks: checks that must run before Hydra creates any output directory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mnist_cnn.checks import check_config
from mnist_cnn.errors import UserError
from mnist_cnn.resume import check_run_dir, resumed_config


class CheckConfigFirst(Callback):
    """Reject a bad single run before Hydra makes or writes into its run directory, with one line and exit 2."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_config(resumed_config(config, config.hydra.overrides.task) if config.resume else config)
            check_run_dir(Path(config.hydra.run.dir), config.resume)
        except UserError as error:
            sys.exit(f"error: {error}")
