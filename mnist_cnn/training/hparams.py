"""TensorBoard's HParams (and every other logger's hyperparameters) with the run's real final metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger, TensorBoardLogger

# Sections whose scalar settings are hyperparameters worth comparing across runs.
HPARAM_SECTIONS = ("model", "optim", "scheduler", "data")


def flat_hparams(cfg: DictConfig, choices: Mapping[str, str]) -> dict[str, Any]:
    """The chosen group options plus every scalar setting, flat, as TensorBoard's HParams tab wants."""
    params: dict[str, Any] = {group: choice for group, choice in choices.items() if group in HPARAM_SECTIONS}
    for section in HPARAM_SECTIONS:
        for key, value in OmegaConf.to_container(cfg[section], resolve=True).items():
            if isinstance(value, (int, float, str, bool)) and key != "root":
                params[f"{section}.{key}"] = value
    params["trainer.max_epochs"] = cfg.trainer.max_epochs
    params["seed"] = cfg.seed
    return params


def log_final_results(loggers: list[Logger], hparams: dict[str, Any], metrics: dict[str, Any]) -> None:
    """One HParams entry per run that carries the real final metrics (no -1 placeholder)."""
    scores = {
        f"hparams/{key.replace('/', '_')}": value
        for key, value in metrics.items()
        if key.split("/")[0] in ("train", "val", "test") and isinstance(value, (int, float))
    }
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(hparams, scores)
        else:
            logger.log_hyperparams(hparams)
            logger.log_metrics(scores)
        logger.save()
