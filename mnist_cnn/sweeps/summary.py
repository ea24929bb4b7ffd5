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

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mnist_cnn.errors import EXIT_INTERRUPTED, EXIT_SOME_FAILED
from mnist_cnn.rundir import PRESET_GROUPS, RunDir, SweepDir
from mnist_cnn.sweeps.resume import resume_command
from mnist_cnn.sweeps.stop import STOP

log = logging.getLogger(__name__)
SCORES = ("train/acc", "val/acc", "test/acc", "test/loss")
AFTER_SCORES = ("epochs", "wall_time_s", "best", "error")
# What the accuracy-by-learning-rate plot needs of every job's config, whether or not the sweep varied it.
PLOTTED = ("optim.lr", "data.batch_size")
SHOWN_AT_THE_END = 10  # rows of the table printed when a sweep ends


def overrides_by_key(lines: list[str]) -> dict[str, str]:
    """`["optim.lr=0.1", "+sweep=quick"]` -> `{"optim.lr": "0.1", "sweep": "quick"}`, as typed."""
    return {line.lstrip("+~").partition("=")[0]: line.partition("=")[2] for line in lines}


def record_sweep(config: DictConfig) -> None:
    """Write what every job shares and which keys differ, once, before the first job names its folder."""
    parser = OverridesParser.create()
    params = config.hydra.sweeper.get("params")
    params = OmegaConf.to_container(params, resolve=False) if params else {}
    task = parser.parse_overrides(list(config.hydra.overrides.task))
    swept = parser.parse_overrides([f"{key}={value}" for key, value in params.items()])
    varying = sorted({o.key_or_group for o in [*task, *swept] if o.is_sweep_override()} - set(PRESET_GROUPS))
    shared = [o.input_line for o in task if not o.is_sweep_override() and o.key_or_group not in varying]
    SweepDir(Path(config.hydra.sweep.dir)).write_record(shared, varying)


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
        "overrides": overrides_by_key(list(hydra_cfg.overrides.task)),
        **{key: metrics.get(key) for key in (*SCORES, "epochs", "wall_time_s", "status", "error")},
        "config": {
            "optim": hydra_cfg.runtime.choices.get("optim"),
            **{key: OmegaConf.select(task_cfg, key) for key in PLOTTED},
        },
        "best": "",
    }


def varying_keys(sweep_dir: SweepDir, rows: list[dict[str, Any]]) -> list[str]:
    """The keys that differ between the jobs: from the sweep's record, else from the jobs' overrides."""
    record = sweep_dir.record()
    if record is not None:
        return list(record.varying)
    keys = sorted({key for row in rows for key in row["overrides"]} - set(PRESET_GROUPS))
    return [key for key in keys if len({row["overrides"].get(key) for row in rows}) > 1 or len(rows) == 1]


def columns(varying: list[str]) -> list[str]:
    return ["job", *varying, "status", *SCORES, *AFTER_SCORES]


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The finished, non-diverged job with the highest validation accuracy.

    On a tie the job that trained fewer epochs wins (the cheaper model to train again), then the
    first: so a sweep that shares epoch prefixes, which numbers its jobs level by level, selects
    the same job as the same grid trained job by job.
    """
    candidates = [row for row in rows if row["status"] == "ok" and row["val/acc"] is not None]
    return max(candidates, key=lambda row: (row["val/acc"], -(row["epochs"] or 0)), default=None)


def collect(sweep_dir: SweepDir) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per job, each with its value of every varying key, the best marked; and those keys."""
    rows = [job_row(job) for job in sweep_dir.jobs()]
    varying = varying_keys(sweep_dir, rows)
    for row in rows:
        row.update({key: row["overrides"].get(key) for key in varying})
    best = best_row(rows)
    if best:
        best["best"] = "yes"
    return rows, varying


def ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The winner first, then by validation accuracy; unfinished jobs last, in their order."""
    return sorted(rows, key=lambda row: (row["best"] != "yes", row["status"] != "ok", -(row["val/acc"] or 0.0)))


def keep_selected_model(sweep_dir: SweepDir, job: str | None) -> None:
    """Copy the best job's config, class names, metrics and best checkpoint to the sweep's selected model folder."""
    target = sweep_dir.selected
    shutil.rmtree(target.path, ignore_errors=True)
    if job is None:
        return
    source = RunDir(sweep_dir.path / job)
    metrics = source.read_metrics()
    checkpoint = metrics.get("best_checkpoint")
    target.path.mkdir()
    for name in (source.CONFIG, source.CLASSES):
        if (source.path / name).is_file():
            shutil.copy2(source.path / name, target.path / name)
    if checkpoint:
        (target.path / checkpoint).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source.path / checkpoint, target.path / checkpoint)
    target.write_metrics({**metrics, "selected_from": job})


def cell(column: str, value: Any) -> str:
    """Scores to four decimals; the job as its number, since its varying values have their own columns."""
    if value is None:
        return ""
    if column in SCORES:
        return f"{value:.4f}"
    return value.split("_")[0] if column == "job" else str(value)


def write_csv(rows: list[dict[str, Any]], varying: list[str], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns(varying), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(rows: list[dict[str, Any]], varying: list[str]) -> list[str]:
    names = columns(varying)
    lines = ["| " + " | ".join(names) + " |", "|" + " --- |" * len(names)]
    return lines + [
        "| " + " | ".join(cell(name, row[name]).replace("|", "\\|") for name in names) + " |" for row in rows
    ]


def verdict(rows: list[dict[str, Any]], sweep_dir: SweepDir) -> str:
    statuses = ["ok", "diverged", "failed", *sorted({row["status"] for row in rows} - {"ok", "diverged", "failed"})]
    counts = ", ".join(f"{sum(row['status'] == status for row in rows)} {status}" for status in statuses)
    best = next((row for row in rows if row["best"]), None)
    if best is None:
        return f"{len(rows)} jobs: {counts}. No job finished without diverging: nothing selected."
    return (
        f"{len(rows)} jobs: {counts}. Best by val/acc: `{best['job']}` (val/acc {best['val/acc']:.4f}, test/acc "
        f"{best['test/acc']:.4f}), copied to `{sweep_dir.SELECTED}/`."
    )


def write_markdown(rows: list[dict[str, Any]], varying: list[str], path: Path, sweep_dir: SweepDir) -> None:
    record = sweep_dir.record()
    shared = ", ".join(f"`{line}`" for line in record.shared) if record is not None and record.shared else "none"
    lines = [
        f"# Sweep summary: {sweep_dir.path.name}",
        "",
        verdict(rows, sweep_dir),
        "",
        f"Shared by every job: {shared}.",
        "",
    ]
    path.write_text("\n".join([*lines, *markdown_table(ranked(rows), varying)]) + "\n")


def summarize(sweep_dir: SweepDir) -> list[dict[str, Any]]:
    """Write the summary (CSV and Markdown) into the sweep directory and keep the best job's model."""
    rows, varying = collect(sweep_dir)
    write_csv(rows, varying, sweep_dir.file(sweep_dir.SUMMARY_CSV))
    write_markdown(rows, varying, sweep_dir.file(sweep_dir.SUMMARY_MD), sweep_dir)
    keep_selected_model(sweep_dir, next((row["job"] for row in rows if row["best"]), None))
    return rows


def print_summary(rows: list[dict[str, Any]], sweep_dir: SweepDir) -> None:
    """The end of a -m run on the terminal: the verdict, the best rows of the table, where the winner is."""
    _, varying = collect(sweep_dir)
    best_rows = ranked(rows)[:SHOWN_AT_THE_END]
    more = (
        f"\n({len(rows) - len(best_rows)} more rows in {sweep_dir.file(sweep_dir.SUMMARY_MD)})"
        if len(rows) > len(best_rows)
        else ""
    )
    print("\n".join([verdict(rows, sweep_dir), *markdown_table(best_rows, varying)]) + more)
    if any(row["best"] for row in rows):
        print(f"the selected model: {sweep_dir.selected.path.resolve()}")


class SweepSummary(Callback):
    """Hydra's hooks around a multirun: the sweep's record first; the summary and the selected model last."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        record_sweep(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = SweepDir(Path(config.hydra.sweep.dir).absolute())
        if not sweep_dir.jobs():
            return
        with sweep_dir.lock():  # two processes resuming one sweep take turns
            rows = summarize(sweep_dir)
        print_summary(rows, sweep_dir)
        if STOP.requested:
            if sweep_dir.file(sweep_dir.PLAN).is_file():  # a grid sweep; an Optuna study resumes from its storage
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
