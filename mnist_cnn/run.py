"""The training recipe: config -> checks -> data, module, trainer -> fit -> final metrics.

Everything a run writes lands in its run directory: the resolved `config.yaml`, `checkpoints/`,
the TensorBoard events and `metrics.json`. Downstream commands read only that directory.
"""

from __future__ import annotations

import csv
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

from mnist_cnn.callbacks import CheckpointOnInterrupt, EpochLogLine, RandomState
from mnist_cnn.checkpoint_io import AtomicCheckpointIO
from mnist_cnn.checks import check_config
from mnist_cnn.data import MNISTDataModule
from mnist_cnn.errors import TrainingInterrupted
from mnist_cnn.evaluation import evaluate
from mnist_cnn.models import count_parameters
from mnist_cnn.module import DigitClassifier
from mnist_cnn.reporting import METRICS_FILE, flat_hparams, log_final_results, write_json
from mnist_cnn.resume import check_run_dir, last_checkpoint, last_checkpoint_path, resumed_config
from mnist_cnn.rundir import CHECKPOINT_DIR, CONFIG_FILE, load_weights

log = logging.getLogger(__name__)


def build_datamodule(cfg: DictConfig) -> MNISTDataModule:
    return MNISTDataModule(**OmegaConf.to_container(cfg.data, resolve=True), seed=cfg.seed)


def build_loggers(cfg: DictConfig, run_dir: Path, resume_step: int | None = None) -> list[Logger]:
    """One logger per key of the `logger` group, each writing under <run dir>/<kind>.

    A resumed run hides the TensorBoard points its killed predecessor wrote from `resume_step` on
    (purge_step), and keeps only the CSV rows from before that step, so the curves continue from
    the checkpoint without doubled steps.
    """
    kinds = {"tensorboard": TensorBoardLogger, "csv": CSVLogger}
    loggers: list[Logger] = []
    for kind, settings in OmegaConf.to_container(cfg.logger, resolve=True).items():
        if kind == "tensorboard" and resume_step is not None:
            settings["purge_step"] = resume_step
        loggers.append(kinds[kind](save_dir=str(run_dir), name=kind, version="", **settings))
        if kind == "csv" and resume_step is not None:
            keep_csv_rows_before(loggers[-1], resume_step)
    return loggers


@rank_zero_only  # the one process that writes the file
def keep_csv_rows_before(logger: CSVLogger, step: int) -> None:
    """Write the earlier run's rows from before `step` back: Lightning's CSVLogger deletes metrics.csv when it starts."""
    path = Path(logger.log_dir) / "metrics.csv"
    if not path.is_file():
        return
    with path.open(newline="") as file:
        rows = [row for row in csv.DictReader(file) if int(row["step"]) < step]
    writer = logger.experiment  # deletes the file
    for row in rows:
        writer.log_metrics({key: value for key, value in row.items() if value and key != "step"}, step=int(row["step"]))  # the text as written
    logger.save()


def build_callbacks(cfg: DictConfig, run_dir: Path) -> list[Callback]:
    settings = cfg.callbacks
    best = {key: value for key, value in settings.checkpoint.items() if key != "save_last"}
    callbacks: list[Callback] = [
        ModelCheckpoint(
            dirpath=str(run_dir / CHECKPOINT_DIR),
            filename="best-epoch{epoch:02d}-val_acc{val/acc:.4f}",
            auto_insert_metric_name=False,
            **best,
        ),
        LearningRateMonitor(**settings.lr_monitor),
        RandomState(),
        CheckpointOnInterrupt(last_checkpoint_path(run_dir)),
    ]
    if settings.checkpoint.save_last:
        # Lightning's save_last rewrites last.ckpt only in epochs that save a best checkpoint, so a
        # crash would lose every epoch since the last improvement: write it after every epoch.
        last = last_checkpoint_path(run_dir)
        callbacks.append(ModelCheckpoint(dirpath=str(last.parent), filename=last.stem, enable_version_counter=False))
    show_bar = settings.progress == "bar" or (settings.progress == "auto" and sys.stderr.isatty())
    callbacks.append(TQDMProgressBar() if show_bar else EpochLogLine())
    return callbacks


def build_trainer(cfg: DictConfig, run_dir: Path, resume_step: int | None = None) -> pl.Trainer:
    callbacks = build_callbacks(cfg, run_dir)
    return pl.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        default_root_dir=str(run_dir),
        logger=build_loggers(cfg, run_dir, resume_step),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=isinstance(callbacks[-1], TQDMProgressBar),
    )


def load_best_weights(module: DigitClassifier, trainer: pl.Trainer) -> str:
    """Swap in the best checkpoint's weights; without one (fast_dev_run), keep the last weights."""
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        load_weights(module, Path(best))
    return best


def final_metrics(module: DigitClassifier, datamodule: MNISTDataModule) -> dict[str, float]:
    """Accuracy and loss on every split, in eval mode (train/acc as the seed study reports it)."""
    device = datamodule.splits["test"][0].device
    module.to(device)
    results = {}
    for split, (images, labels) in datamodule.splits.items():
        scores = evaluate(module, images, labels, datamodule.eval_batch_size)
        results[f"{split}/acc"], results[f"{split}/loss"] = scores["acc"], scores["loss"]
    return results


def run(cfg: DictConfig) -> float:
    """Train, evaluate and report one run; returns the validation accuracy (a sweeper's objective)."""
    started = time.perf_counter()
    if cfg.resume:
        cfg = resumed_config(cfg, HydraConfig.get().overrides.task)
    check_config(cfg)
    cfg.data.root = to_absolute_path(cfg.data.root)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    check_run_dir(run_dir, cfg.resume)
    resume_from = last_checkpoint(run_dir) if cfg.resume else None
    pl.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg)
    module = DigitClassifier.from_config(cfg)
    # Loading it here first refuses pickled objects or weights of another layout with one clear line.
    resume_step = load_weights(module, resume_from)["global_step"] if resume_from else None
    OmegaConf.save(cfg, run_dir / CONFIG_FILE, resolve=True)
    trainer = build_trainer(cfg, run_dir, resume_step)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    except SIGTERMException as stop:
        raise TrainingInterrupted(f"training stopped by a signal after saving {last_checkpoint_path(run_dir)}; continue with: python -m mnist_cnn.train resume={run_dir}") from stop
    if not trainer.is_global_zero:
        return 0.0

    best_checkpoint = load_best_weights(module, trainer)
    datamodule.setup()
    metrics: dict[str, Any] = {
        **final_metrics(module, datamodule),
        "epochs": int(trainer.callback_metrics.get("epochs", trainer.current_epoch)),
        "params": count_parameters(module.network),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "status": "diverged" if "diverged" in trainer.callback_metrics else "ok",
        "seed": cfg.seed,
        "best_checkpoint": str(Path(best_checkpoint).relative_to(run_dir)) if best_checkpoint else None,
    }
    write_json(run_dir / METRICS_FILE, metrics)
    log_final_results(trainer.loggers, flat_hparams(cfg, HydraConfig.get().runtime.choices), metrics)
    log.info("test/acc %.4f  val/acc %.4f  train/acc %.4f  in %.1f s  -> %s", metrics["test/acc"], metrics["val/acc"], metrics["train/acc"], metrics["wall_time_s"], run_dir)
    return metrics["val/acc"]
