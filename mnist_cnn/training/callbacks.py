"""Lightning callbacks of our own: readable progress, and what a resumable run must save."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import Any

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from mnist_cnn.rundir import RunDir
from mnist_cnn.training.figures import confusion_figure, mistakes_figure

log = logging.getLogger(__name__)


class LogLines(pl.Callback):
    """Plain log lines for logs, CI and cluster jobs, where progress bars turn to noise.

    One line per epoch with the validation figures, and between them one line every
    `every_seconds` with the step, images/s and the latest loss, so a long epoch is never silent.
    """

    def __init__(self, every_seconds: float = 30.0) -> None:
        self.every_seconds = every_seconds
        self.epoch_started = self.last_line = time.perf_counter()
        self.images_since_line = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epoch_started = self.last_line = time.perf_counter()
        self.images_since_line = 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.images_since_line += len(batch[1])
        elapsed = time.perf_counter() - self.last_line
        if elapsed < self.every_seconds or not trainer.is_global_zero:
            return
        loss = outputs["loss"].item() if isinstance(outputs, dict) else float("nan")  # None on a skipped step
        log.info(
            "epoch %d/%d  step %d/%d  %.0f images/s  loss %.4f",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            batch_idx + 1,
            trainer.num_training_batches,
            self.images_since_line / elapsed,
            loss,
        )
        self.last_line, self.images_since_line = time.perf_counter(), 0

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After the module's epoch-end hook has logged the validation figures; before the training
        # epoch ends, so its train/* figures are not logged yet.
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        figures = "  ".join(f"{key} {metrics[key].item():.4f}" for key in ("val/loss", "val/acc") if key in metrics)
        elapsed = time.perf_counter() - self.epoch_started
        log.info("epoch %d/%d  %s  (%.1f s)", trainer.current_epoch + 1, trainer.max_epochs, figures, elapsed)


class ValidationFigures(pl.Callback):
    """The validation set's confusion matrix and misclassified digits in TensorBoard's Images tab.

    Drawn every `every_n_epochs` epochs and at the last one: drawing costs about as much as a short
    epoch's own work, which a long sweep of many epochs notices.
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        self.every_n_epochs = every_n_epochs

    def due(self, trainer: pl.Trainer) -> bool:
        epoch = trainer.current_epoch + 1
        return epoch % self.every_n_epochs == 0 or epoch == trainer.max_epochs

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        boards = [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
        if trainer.sanity_checking or pl_module.val_confusion is None or not boards or not self.due(trainer):
            return
        confusion = trainer.strategy.reduce(pl_module.val_confusion, reduce_op="sum")  # every rank's share
        if not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch + 1
        figures = {
            "val/confusion": confusion_figure(confusion, f"validation, epoch {epoch}"),
            "val/misclassified": mistakes_figure(
                pl_module.misclassified, f"misclassified validation digits, epoch {epoch}"
            ),
        }
        for tag, figure in figures.items():
            for board in boards:
                board.experiment.add_figure(tag, figure, global_step=trainer.global_step, close=False)
            plt.close(figure)


def progress_reporter(style: str = "auto", every_seconds: float = 30.0) -> pl.Callback:
    """`bar`: Lightning's tqdm bar; `log`: LogLines; `auto`: the bar only on a terminal.

    Chosen explicitly, because Lightning switches to Rich's bar whenever rich is importable.
    """
    show_bar = style == "bar" or (style == "auto" and sys.stderr.isatty())
    return TQDMProgressBar() if show_bar else LogLines(every_seconds)


class RandomState(pl.Callback):
    """Carry torch's random state in every checkpoint, which Lightning does not.

    Dropout draws from it, so without it a resumed run would train on different masks than the
    uninterrupted run with the same seed, and end with different weights.
    """

    def state_dict(self) -> dict[str, Any]:
        return {
            "cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["cpu"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class CheckpointOnInterrupt(pl.Callback):
    """Save the run's `last.ckpt` when SIGTERM (SLURM preemption) or Ctrl+C stops training.

    Lightning turns SIGTERM into a clean stop after the current batch; Ctrl+C is routed the same
    way, so the checkpoint never holds a half-done optimizer step.
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning has installed its SIGTERM handler by now and restores SIGINT's at teardown.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.getsignal(signal.SIGTERM))

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(RunDir(trainer.default_root_dir).last_checkpoint, weights_only=False)
