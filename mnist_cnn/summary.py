"""A sweep's summary: one row per job, the best job by validation accuracy, and its model kept.

Built only from the job directories (their `.hydra/` files and `metrics.json`), so it can be
rebuilt at any time, and a job that never finished still gets a row.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnist_cnn.reporting import METRICS_FILE, read_metrics, write_json
from mnist_cnn.rundir import CONFIG_FILE

SELECTED_DIR = "selected_model"
SCORES = ("train/acc", "val/acc", "test/acc", "test/loss")
COLUMNS = ("job", "overrides", "status", *SCORES, "epochs", "wall_time_s", "optim", "optim.lr", "data.batch_size", "best", "error")


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The sweep's job directories, in the order Hydra numbered them."""
    jobs = [path for path in sweep_dir.iterdir() if (path / ".hydra" / "hydra.yaml").is_file() and path.name != SELECTED_DIR]
    return sorted(jobs, key=lambda path: OmegaConf.load(path / ".hydra" / "hydra.yaml").hydra.job.num)


def job_overrides(hydra_cfg: DictConfig) -> list[str]:
    """The job's command-line and sweep overrides, less those kept out of folder names (paths, presets)."""
    excluded = set(hydra_cfg.job.config.override_dirname.exclude_keys)
    return [line for line in hydra_cfg.overrides.task if line.split("=")[0].lstrip("+~") not in excluded]


def job_row(job_dir: Path) -> dict[str, Any]:
    hydra_cfg = OmegaConf.load(job_dir / ".hydra" / "hydra.yaml").hydra
    task_cfg = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    metrics = read_metrics(job_dir) if (job_dir / METRICS_FILE).is_file() else {"status": "failed", "error": "no metrics.json: the job did not finish"}
    return {
        "job": job_dir.name,
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


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    rows = [job_row(job_dir) for job_dir in job_dirs(sweep_dir)]
    if rows:
        varying_overrides(rows)
    best = best_row(rows)
    if best:
        best["best"] = "yes"
    return rows


def keep_selected_model(sweep_dir: Path, job: str | None) -> None:
    """Copy the best job's config, metrics and best checkpoint to `<sweep>/selected_model/`."""
    target = sweep_dir / SELECTED_DIR
    shutil.rmtree(target, ignore_errors=True)
    if job is None:
        return
    source = sweep_dir / job
    metrics = read_metrics(source)
    checkpoint = metrics.get("best_checkpoint")
    target.mkdir()
    shutil.copy2(source / CONFIG_FILE, target / CONFIG_FILE)
    if checkpoint:
        (target / checkpoint).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / checkpoint, target / checkpoint)
    write_json(target / METRICS_FILE, {**metrics, "selected_from": job})


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


def write_markdown(rows: list[dict[str, Any]], path: Path, sweep_dir: Path) -> None:
    best = next((row for row in rows if row["best"]), None)
    counts = ", ".join(f"{sum(row['status'] == status for row in rows)} {status}" for status in ("ok", "diverged", "failed"))
    verdict = f"best by val/acc: `{best['job']}` (val/acc {best['val/acc']:.4f}, test/acc {best['test/acc']:.4f}), copied to `{SELECTED_DIR}/`" if best else "no job finished without diverging: nothing selected"
    lines = [f"# Sweep summary: {sweep_dir.name}", "", f"{len(rows)} jobs: {counts}. {verdict}.", ""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(column, row[column]).replace("|", "\\|") for column in COLUMNS) + " |" for row in rows]
    path.write_text("\n".join(lines) + "\n")


def summarize(sweep_dir: Path) -> list[dict[str, Any]]:
    """Write summary.csv and summary.md into the sweep directory and keep the best job's model."""
    rows = collect(sweep_dir)
    write_csv(rows, sweep_dir / "summary.csv")
    write_markdown(rows, sweep_dir / "summary.md", sweep_dir)
    keep_selected_model(sweep_dir, next((row["job"] for row in rows if row["best"]), None))
    return rows
