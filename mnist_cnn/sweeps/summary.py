"""A sweep's summary: one row per job, the best job by validation accuracy, and its model kept.

Built only from the job directories (their `.hydra/` files and `metrics.json`), so it can be
rebuilt at any time, and a job that never finished still gets a row.
"""

from __future__ import annotations

import csv
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mnist_cnn.errors import EXIT_INTERRUPTED, EXIT_SOME_FAILED
from mnist_cnn.rundir import RunDir, SweepDir
from mnist_cnn.sweeps.resume import resume_command
from mnist_cnn.sweeps.stop import STOP

log = logging.getLogger(__name__)
SCORES = ("train/acc", "val/acc", "test/acc", "test/loss")
COLUMNS = (
    "job",
    "overrides",
    "status",
    *SCORES,
    "epochs",
    "wall_time_s",
    "optim",
    "optim.lr",
    "data.batch_size",
    "best",
    "error",
)


def job_overrides(hydra_cfg: DictConfig) -> list[str]:
    """The job's command-line and sweep overrides, less those kept out of folder names (paths, presets)."""
    excluded = set(hydra_cfg.job.config.override_dirname.exclude_keys)
    return [line for line in hydra_cfg.overrides.task if line.split("=")[0].lstrip("+~") not in excluded]


def unfinished(job: RunDir) -> dict[str, str]:
    """A job without metrics.json: stopped mid-training (resumable), or never started."""
    if job.last_checkpoint.is_file():
        return {"status": "interrupted", "error": f"stopped after saving {job.LAST_CHECKPOINT_NAME}.ckpt: resume it"}
    return {"status": "not run", "error": "the sweep stopped before this job trained"}


def job_row(job: RunDir) -> dict[str, Any]:
    hydra_cfg = job.hydra_settings()
    task_cfg = OmegaConf.load(job.job_config_file)
    metrics = job.read_metrics() if job.metrics_file.is_file() else unfinished(job)
    return {
        "job": job.path.name,
        "overrides": job_overrides(hydra_cfg),
        **{key: metrics.get(key) for key in (*SCORES, "epochs", "wall_time_s", "status", "error")},
        "optim": hydra_cfg.runtime.choices.get("optim"),
        "optim.lr": OmegaConf.select(task_cfg, "optim.lr"),
        "data.batch_size": OmegaConf.select(task_cfg, "data.batch_size"),
        "best": "",
    }


def varying_overrides(rows: list[dict[str, Any]]) -> None:
    """Keep in each row only the overrides that tell the jobs apart (all of them for a lone job)."""
    shared = set.intersection(*(set(row["overrides"]) for row in rows)) if len(rows) > 1 else set()
    for row in rows:
        row["overrides"] = ",".join(line for line in row["overrides"] if line not in shared)


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The finished, non-diverged job with the highest validation accuracy (the first on a tie)."""
    candidates = [row for row in rows if row["status"] == "ok" and row["val/acc"] is not None]
    return max(candidates, key=lambda row: row["val/acc"], default=None)


def collect(sweep_dir: SweepDir) -> list[dict[str, Any]]:
    rows = [job_row(job) for job in sweep_dir.jobs()]
    if rows:
        varying_overrides(rows)
    best = best_row(rows)
    if best:
        best["best"] = "yes"
    return rows


def keep_selected_model(sweep_dir: SweepDir, job: str | None) -> None:
    """Copy the best job's config, metrics and best checkpoint to the sweep's selected model folder."""
    target = sweep_dir.selected
    shutil.rmtree(target.path, ignore_errors=True)
    if job is None:
        return
    source = RunDir(sweep_dir.path / job)
    metrics = source.read_metrics()
    checkpoint = metrics.get("best_checkpoint")
    target.path.mkdir()
    shutil.copy2(source.config_file, target.config_file)
    if checkpoint:
        (target.path / checkpoint).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source.path / checkpoint, target.path / checkpoint)
    target.write_metrics({**metrics, "selected_from": job})


def cell(column: str, value: Any) -> str:
    """Scores to four decimals; the job as its number, since its overrides have their own column."""
    if value is None:
        return ""
    if column in SCORES:
        return f"{value:.4f}"
    return value.split("_")[0] if column == "job" else str(value)


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def write_markdown(rows: list[dict[str, Any]], path: Path, sweep_dir: SweepDir) -> None:
    best = next((row for row in rows if row["best"]), None)
    statuses = ["ok", "diverged", "failed", *sorted({row["status"] for row in rows} - {"ok", "diverged", "failed"})]
    counts = ", ".join(f"{sum(row['status'] == status for row in rows)} {status}" for status in statuses)
    verdict = (
        f"best by val/acc: `{best['job']}` (val/acc {best['val/acc']:.4f}, test/acc {best['test/acc']:.4f}), "
        f"copied to `{sweep_dir.SELECTED}/`"
        if best
        else "no job finished without diverging: nothing selected"
    )
    lines = [f"# Sweep summary: {sweep_dir.path.name}", "", f"{len(rows)} jobs: {counts}. {verdict}.", ""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += [
        "| " + " | ".join(cell(column, row[column]).replace("|", "\\|") for column in COLUMNS) + " |" for row in rows
    ]
    path.write_text("\n".join(lines) + "\n")


def summarize(sweep_dir: SweepDir) -> list[dict[str, Any]]:
    """Write the summary (CSV and Markdown) into the sweep directory and keep the best job's model."""
    rows = collect(sweep_dir)
    write_csv(rows, sweep_dir.file(sweep_dir.SUMMARY_CSV))
    write_markdown(rows, sweep_dir.file(sweep_dir.SUMMARY_MD), sweep_dir)
    keep_selected_model(sweep_dir, next((row["job"] for row in rows if row["best"]), None))
    return rows


class SweepSummary(Callback):
    """Hydra's hook after every multirun: the summary and the selected model in the sweep directory."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = SweepDir(Path(config.hydra.sweep.dir).absolute())
        if not sweep_dir.path.is_dir():
            return
        with sweep_dir.lock():  # two processes resuming one sweep take turns
            rows = summarize(sweep_dir)
        log.info("sweep summary of %d jobs: %s", len(rows), sweep_dir.file(sweep_dir.SUMMARY_MD))
        if STOP.requested:
            print(f"continue the sweep with: {resume_command(sweep_dir)}", file=sys.stderr)
            print(
                f"the sweep was stopped by a signal; the summary covers the jobs that finished: {sweep_dir.path}",
                file=sys.stderr,
            )
            sys.exit(EXIT_INTERRUPTED)
        if rows and all(row["status"] == "failed" for row in rows):
            print(
                f"error: every job of the sweep failed: see the error column of {sweep_dir.file(sweep_dir.SUMMARY_MD)}",
                file=sys.stderr,
            )
            sys.exit(EXIT_SOME_FAILED)
