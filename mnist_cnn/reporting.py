"""What a finished run reports: metrics.json, and TensorBoard's HParams with real final metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger, TensorBoardLogger

METRICS_FILE = "metrics.json"
# Sections whose scalar settings are hyperparameters worth comparing across runs.
HPARAM_SECTIONS = ("model", "optim", "scheduler", "data")


def write_json(path: Path, content: dict[str, Any]) -> None:
    """Write through a temporary file and a rename, so a crash never leaves half a file."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(content, indent=2) + "\n")
    partial.replace(path)


def read_metrics(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / METRICS_FILE).read_text())


def flat_hparams(cfg: DictConfig, choices: dict[str, str]) -> dict[str, Any]:
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
        f"hparams/{key.replace('/', '_')}": value for key, value in metrics.items() if key.split("/")[0] in ("train", "val", "test")
    }
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(hparams, scores)
        else:
            logger.log_hyperparams(hparams)
            logger.log_metrics(scores)
        logger.save()
