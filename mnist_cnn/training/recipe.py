"""The training recipe: a prepared config -> data, module, trainer -> fit -> final metrics.

Everything a run writes lands in its run directory (mnist_cnn.rundir names every file): the
resolved config, checkpoints, the loggers' folders and metrics.json. Downstream commands read only
that directory. Call it in-process as `run(prepare(cfg, run_dir), run_dir)`; `train` does the same
inside a Hydra app.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, ProgressBar
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from mnist_cnn.errors import TrainingInterrupted
from mnist_cnn.rundir import RunDir
from mnist_cnn.training.checkpoints import AtomicCheckpointIO, load_weights
from mnist_cnn.training.data import ImageDataModule
from mnist_cnn.training.hparams import flat_hparams, log_final_results
from mnist_cnn.training.models import count_parameters
from mnist_cnn.training.module import DigitClassifier
from mnist_cnn.training.scoring import final_metrics

log = logging.getLogger(__name__)

# Callback nodes that write checkpoints: the run directory decides where and under what name.
CHECKPOINT_NAMES = {"best_checkpoint": RunDir.BEST_CHECKPOINT_NAME, "last_checkpoint": RunDir.LAST_CHECKPOINT_NAME}


def build_datamodule(cfg: DictConfig) -> ImageDataModule:
    return ImageDataModule(**OmegaConf.to_container(cfg.data, resolve=True), seed=cfg.seed)


def build_loggers(settings: DictConfig, run_dir: RunDir, resume_step: int | None = None) -> list[Logger]:
    """One logger per non-null node of the `logger` config, each writing into run_dir/<its key>."""
    return [
        instantiate(node, save_dir=str(run_dir.path), name=name, resume_step=resume_step)
        for name, node in settings.items()
        if node is not None
    ]


def build_callbacks(settings: DictConfig, run_dir: RunDir) -> list[Callback]:
    """One callback per non-null node of the `callbacks` config."""
    callbacks = []
    for name, node in settings.items():
        if node is None:
            continue
        where = (
            {"dirpath": str(run_dir.checkpoints), "filename": CHECKPOINT_NAMES[name]}
            if name in CHECKPOINT_NAMES
            else {}
        )
        callbacks.append(instantiate(node, **where))
    return callbacks


def build_trainer(cfg: DictConfig, run_dir: RunDir, resume_step: int | None = None) -> pl.Trainer:
    callbacks = build_callbacks(cfg.callbacks, run_dir)
    return pl.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        default_root_dir=str(run_dir.path),
        logger=build_loggers(cfg.logger, run_dir, resume_step),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=any(isinstance(callback, ProgressBar) for callback in callbacks),
    )


def load_best_weights(module: DigitClassifier, trainer: pl.Trainer) -> str:
    """Swap in the best checkpoint's weights; without one (fast_dev_run), keep the last weights."""
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        load_weights(module, Path(best))
    return best


def run(cfg: DictConfig, run_dir: Path, choices: Mapping[str, str] | None = None) -> float:
    """Train, measure and report one run; returns the validation accuracy (a sweeper's objective).

    `cfg` comes from `checks.prepare`; `choices` are the config groups' chosen options
    (Hydra's runtime choices), logged with the hyperparameters.
    """
    started = time.perf_counter()
    run_dir = RunDir(run_dir)
    resume_from = run_dir.last_checkpoint if cfg.resume else None
    pl.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg)
    # Null statistics are measured on the training images once; the config records them for every later use.
    cfg.data.mean, cfg.data.std = datamodule.normalization()
    module = DigitClassifier.from_config(cfg)
    # Loading it here first refuses pickled objects or weights of another layout with one clear line.
    resume_step = load_weights(module, resume_from)["global_step"] if resume_from else None
    run_dir.write_config(cfg)
    run_dir.write_classes(datamodule.spec.classes)
    trainer = build_trainer(cfg, run_dir, resume_step)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    except SIGTERMException as stop:
        raise TrainingInterrupted(
            f"training stopped by a signal after saving {run_dir.last_checkpoint}; continue with: python -m "
            f"mnist_cnn.train resume={run_dir.path}"
        ) from stop
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
        "best_checkpoint": run_dir.relative(best_checkpoint) if best_checkpoint else None,
    }
    run_dir.write_metrics(metrics)
    log_final_results(trainer.loggers, flat_hparams(cfg, choices or {}), metrics)
    log.info(
        "test/acc %.4f  val/acc %.4f  train/acc %.4f  in %.1f s  -> %s",
        metrics["test/acc"],
        metrics["val/acc"],
        metrics["train/acc"],
        metrics["wall_time_s"],
        run_dir.path,
    )
    return metrics["val/acc"]
