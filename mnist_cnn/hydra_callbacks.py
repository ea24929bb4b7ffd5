"""Hydra callbacks: checks that must run before Hydra creates any output directory, and the sweep summary."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mnist_cnn.checks import check_config, check_sweep_strategy
from mnist_cnn.errors import UserError
from mnist_cnn.resume import check_run_dir, resumed_config
from mnist_cnn.summary import summarize

log = logging.getLogger(__name__)


class CheckConfigFirst(Callback):
    """Reject a bad single run, or a sweep that cannot work, before Hydra makes or writes into any directory."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_config(resumed_config(config, config.hydra.overrides.task) if config.resume else config)
            check_run_dir(Path(config.hydra.run.dir), config.resume)
        except UserError as error:
            sys.exit(f"error: {error}")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_sweep_strategy(config, str(config.hydra.launcher.get("_target_", "")))
        except UserError as error:
            sys.exit(f"error: {error}")


class SweepSummary(Callback):
    """After every multirun: summary.csv, summary.md and the best job's model in the sweep directory."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = summarize(sweep_dir)
        log.info("sweep summary of %d jobs: %s", len(rows), sweep_dir / "summary.md")
