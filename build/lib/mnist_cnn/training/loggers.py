"""Lightning's loggers, writing into the run directory and continuing a resumed run's history.

A logger node of the `logger` config names one of these; the recipe passes `save_dir` (the run
directory), `name` (the node's key, so `logger.tensorboard` writes `tensorboard/`) and, for a
resumed run, `resume_step`: the step of the checkpoint it continues from.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from pytorch_lightning import loggers
from pytorch_lightning.utilities import rank_zero_only


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Hides the points a killed predecessor wrote from `resume_step` on (purge_step): no curve holds a step twice."""

    def __init__(self, save_dir: str, name: str, resume_step: int | None = None, **settings: Any):
        super().__init__(save_dir, name=name, version="", purge_step=resume_step, **settings)


class CSVLogger(loggers.CSVLogger):
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
