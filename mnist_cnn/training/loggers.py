"""Lightning's loggers, writing into the run directory and continuing a resumed run's history.

A logger node of the `logger` config names one of these; the recipe passes `save_dir` (the run
directory), `name` (the node's key, so `logger.tensorboard` writes `tensorboard/`) and, for a
resumed run, `resume_step`: the step of the checkpoint it continues from.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytorch_lightning import loggers
from pytorch_lightning.utilities import rank_zero_only


def tidy(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One name per curve: the learning rate as train/lr whatever the optimizer, no flat `epoch` chart."""
    tidied = {}
    for name, value in metrics.items():
        if name != "epoch":
            tidied["train/lr" if name.startswith("lr-") else name] = value
    return tidied


class TidyNames:
    """Logs every metric under its tidy name (mixed in before a Lightning logger)."""

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        super().log_metrics(tidy(metrics), step)


class TensorBoardLogger(TidyNames, loggers.TensorBoardLogger):
    """Hides the points a killed predecessor wrote from `resume_step` on (purge_step): no curve holds a step twice."""

    def __init__(self, save_dir: str, name: str, resume_step: int | None = None, **settings: Any):
        super().__init__(save_dir, name=name, version="", purge_step=resume_step, **settings)


class MLFlowLogger(TidyNames, loggers.MLFlowLogger):
    """One MLflow run per run directory, named after it, in a shared store; a resumed run logs a new MLflow run."""

    def __init__(self, save_dir: str, name: str, resume_step: int | None = None, **settings: Any):
        store = settings.get("tracking_uri", "")
        if store.startswith("sqlite:///"):  # SQLite creates the file, not its folder
            Path(store.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(run_name=Path(save_dir).name, **settings)


class WandbLogger(TidyNames, loggers.WandbLogger):
    """A W&B run named after the run directory, its files inside it (offline unless `offline: false`)."""

    def __init__(self, save_dir: str, name: str, resume_step: int | None = None, **settings: Any):
        super().__init__(name=Path(save_dir).name, save_dir=save_dir, **settings)


class CSVLogger(TidyNames, loggers.CSVLogger):
    """Keeps the rows from before `resume_step`: Lightning's CSVLogger deletes metrics.csv when it starts."""

    def __init__(self, save_dir: str, name: str, resume_step: int | None = None, **settings: Any):
        super().__init__(save_dir, name=name, version="", **settings)
        if resume_step is not None:
            self.keep_rows_before(resume_step)

    @rank_zero_only  # the one process that writes the file
    def keep_rows_before(self, step: int) -> None:
        path = Path(self.log_dir) / "metrics.csv"
        if not path.is_file():
            return
        with path.open(newline="") as file:
            rows = [row for row in csv.DictReader(file) if int(row["step"]) < step]
        writer = self.experiment  # deletes the file
        for row in rows:
            writer.log_metrics(
                {key: value for key, value in row.items() if value and key != "step"}, step=int(row["step"])
            )  # the text as written
        self.save()
