"""The training recipe: a prepared config -> data, module, trainer -> fit -> final metrics.

Everything a run writes lands in its run directory (mnist_cnn.rundir names every file): the
resolved config, checkpoints, the loggers' folders and metrics.json. Downstream commands read only
that directory. Call it in-process as `run(prepare(cfg, run_dir), run_dir)`; `train` does the same
inside a Hydra app.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ProgressBar
from pytorch_lightning.loggers import Logger, TensorBoardLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from mnist_cnn.errors import TrainingInterrupted
from mnist_cnn.rundir import RunDir
from mnist_cnn.training.checkpoints import AtomicCheckpointIO, load_initial_weights, load_weights
from mnist_cnn.training.continuation import take_over
from mnist_cnn.training.data import ImageDataModule
from mnist_cnn.training.figures import confusion_figure, curves_figure, mistakes_figure, save
from mnist_cnn.training.hparams import flat_hparams, log_final_results
from mnist_cnn.training.models import count_parameters, flops_per_image
from mnist_cnn.training.module import DigitClassifier
from mnist_cnn.training.scoring import Scores, final_metrics, images_to_measure, measurement_limits

log = logging.getLogger(__name__)

# Callback nodes that write checkpoints: the run directory decides where and under what name.
CHECKPOINT_NAMES = {"best_checkpoint": RunDir.BEST_CHECKPOINT_NAME, "last_checkpoint": RunDir.LAST_CHECKPOINT_NAME}


def build_datamodule(cfg: DictConfig) -> ImageDataModule:
    return ImageDataModule(**OmegaConf.to_container(cfg.data, resolve=True), seed=cfg.seed)


def logger_names(cfg: DictConfig) -> list[str]:
    """The keys of the `logger` config's non-null nodes: each logger's folder in the run directory."""
    return [name for name, node in (OmegaConf.select(cfg, "logger") or {}).items() if node is not None]


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
    loggers = build_loggers(OmegaConf.select(cfg, "logger") or {}, run_dir, resume_step)
    callbacks = build_callbacks(cfg.callbacks, run_dir)
    if not loggers:  # Lightning refuses a learning-rate monitor with nowhere to log to
        callbacks = [callback for callback in callbacks if not isinstance(callback, LearningRateMonitor)]
    return pl.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        default_root_dir=str(run_dir.path),
        logger=loggers,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=any(isinstance(callback, ProgressBar) for callback in callbacks),
    )


def quiet_known_noise() -> None:
    """Lightning's advert for its cloud logger, a deprecation inside Lightning that no user can act on, and
    TensorBoard's reader narrating its file walk when the curves are read back for plots/."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    logging.getLogger("tensorboard").setLevel(logging.WARNING)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )


def describe_network(network: torch.nn.Module, image_shape: tuple[int, int, int]) -> None:
    """One line instead of Lightning's summary table: what trains, how large, how much work per image."""
    flops = flops_per_image(network, image_shape)
    parameters = f"{count_parameters(network):,}"
    log.info("network: %s, %s parameters, %.1f MFLOPs per image", type(network).__name__, parameters, flops / 1e6)


def measure(
    module: DigitClassifier, datamodule: ImageDataModule, trainer_cfg: DictConfig
) -> tuple[dict[str, Any], Scores]:
    """The final train/val/test measurement with the best weights, said before and timed after: it takes a while."""
    limits = measurement_limits(OmegaConf.to_container(trainer_cfg))
    datamodule.setup()
    total = sum(
        images_to_measure(len(labels), datamodule.eval_batch_size, limits[split])
        for split, (_, labels) in datamodule.splits.items()
    )
    log.info("measuring train/val/test with the best checkpoint (%s images)...", f"{total:,}")
    started = time.perf_counter()
    results = final_metrics(module, datamodule, limits)
    log.info("measured in %.1f s", time.perf_counter() - started)
    return results


def save_figures(run_dir: RunDir, test: Scores, loggers: list[Logger], step: int) -> None:
    """The test set's confusion matrix and mistakes, and the training curves: PNGs in plots/, and in TensorBoard."""
    boards = [logger for logger in loggers if isinstance(logger, TensorBoardLogger)]
    figures = {
        "test_confusion": confusion_figure(test.confusion, "test set"),
        "test_misclassified": mistakes_figure(test.mistakes, "misclassified test digits"),
    }
    if boards:
        boards[0].experiment.flush()  # the curves are read back from its event files
        figures["curves"] = curves_figure([run_dir])
    for name, figure in figures.items():
        for board in boards:
            board.experiment.add_figure(name.replace("test_", "test/"), figure, global_step=step, close=False)
        save(figure, run_dir.plot(name))


def load_best_weights(module: DigitClassifier, trainer: pl.Trainer) -> str:
    """Swap in the best checkpoint's weights; without one (fast_dev_run), keep the last weights."""
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        load_weights(module, Path(best))
    return best


def run(
    cfg: DictConfig, run_dir: Path, choices: Mapping[str, str] | None = None, differing: Sequence[str] = ()
) -> float:
    """Train, measure and report one run; returns the validation accuracy (a sweeper's objective).

    `cfg` comes from `checks.prepare`; `choices` are the config groups' chosen options (Hydra's
    runtime choices) and `differing` the keys that tell this run from its sweep's others (or that
    its command line set), both for the hyperparameters logged with the final metrics. The run directory stays locked
    while it trains, so a second run or resume of it is refused.
    """
    run_dir = RunDir(run_dir)
    with run_dir.lock():
        return train_and_measure(cfg, run_dir, choices or {}, differing)


def train_and_measure(cfg: DictConfig, run_dir: RunDir, choices: Mapping[str, str], differing: Sequence[str]) -> float:
    started = time.perf_counter()
    quiet_known_noise()
    if cfg.continue_from and not cfg.resume:  # a new run that starts as a finished run at its last epoch
        take_over(RunDir(cfg.continue_from), run_dir, logger_names(cfg))
    resume_from = run_dir.last_checkpoint if cfg.resume or cfg.continue_from else None
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = build_datamodule(cfg)
    # Null statistics are measured on the training images once; the config records them for every later use.
    cfg.data.mean, cfg.data.std = datamodule.normalization()
    module = DigitClassifier.from_config(cfg)
    spec = datamodule.spec
    describe_network(module.network, (spec.channels, spec.size, spec.size))
    # Loading weights here first refuses pickled objects or another architecture with one clear line.
    resume_step = load_weights(module, resume_from)["global_step"] if resume_from else None
    if cfg.init_from and not resume_from:
        load_initial_weights(module, Path(cfg.init_from))
    if resume_from and run_dir.metrics_file.is_file():  # a finished run trained further keeps its results beside
        run_dir.metrics_file.replace(run_dir.earlier_metrics_file(run_dir.read_metrics()["epochs"]))
    run_dir.write_config(cfg)
    run_dir.write_classes(datamodule.spec.classes)
    trainer = build_trainer(cfg, run_dir, resume_step)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    except SIGTERMException as stop:
        raise TrainingInterrupted(
            f"training stopped by a signal after saving {run_dir.last_checkpoint}; "
            f"continue with: python -m mnist_cnn.train resume={run_dir.path}"
        ) from stop
    if not trainer.is_global_zero:
        return 0.0

    best_checkpoint = load_best_weights(module, trainer)
    measured, test = measure(module, datamodule, cfg.trainer)
    finite = all(math.isfinite(measured[f"{split}/loss"]) for split in ("train", "val", "test"))
    metrics: dict[str, Any] = {
        **measured,
        "epochs": int(trainer.callback_metrics.get("epochs", trainer.current_epoch)),
        "params": count_parameters(module.network),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "status": "ok" if finite and "diverged" not in trainer.callback_metrics else "diverged",
        "seed": cfg.seed,
        "best_checkpoint": run_dir.relative(best_checkpoint) if best_checkpoint else None,
    }
    run_dir.write_metrics(metrics)
    log_final_results(trainer.loggers, flat_hparams(cfg, choices), differing, metrics, trainer.global_step)
    save_figures(run_dir, test, trainer.loggers, trainer.global_step)
    log.info(
        "test/acc %.4f  val/acc %.4f  train/acc %.4f  in %.1f s  -> %s",
        metrics["test/acc"],
        metrics["val/acc"],
        metrics["train/acc"],
        metrics["wall_time_s"],
        run_dir.path,
    )
    return metrics["val/acc"]
