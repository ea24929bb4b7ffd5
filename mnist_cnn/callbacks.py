"""Lightning callbacks of our own: readable progress where no terminal shows a bar."""

from __future__ import annotations

import logging
import time

import pytorch_lightning as pl

log = logging.getLogger(__name__)


class EpochLogLine(pl.Callback):
    """One plain log line per epoch, for logs, CI and cluster jobs where progress bars turn to noise."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        figures = "  ".join(f"{key} {metrics[key].item():.4f}" for key in ("train/loss_epoch", "val/loss", "val/acc") if key in metrics)
        elapsed = time.perf_counter() - self.started
        log.info("epoch %d/%d  %s  (%.1f s)", trainer.current_epoch + 1, trainer.max_epochs, figures, elapsed)
