"""One job of a `-m` sweep: whatever happens to it, the other jobs and the summary go on.

Hydra's sweepers re-raise a failed job's exception after the batch, and `sys.exit` would end the
whole multirun, so a sweep job records its failure in its own `metrics.json` and returns instead.
A job holds its directory's lock from before its checks to its last write, so when two processes
resume one sweep, only one of them runs each job; the other skips it and writes nothing there.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mnist_cnn.errors import RunBusy, TrainingInterrupted, first_line
from mnist_cnn.rundir import RunDir, SweepDir
from mnist_cnn.sweeps.progress import log_progress
from mnist_cnn.sweeps.stop import STOP
from mnist_cnn.training.checks import check_sweep_strategy, prepare
from mnist_cnn.training.hparams import overridden_keys
from mnist_cnn.training.recipe import train_and_measure
from mnist_cnn.training.resume import resumable_overrides

log = logging.getLogger(__name__)


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def named_first_line(error: BaseException) -> str:
    """`UserError: optim.lr=0 is invalid ...`: a summary row has no traceback to say what raised."""
    return f"{type(error).__name__}: {first_line(error)}" if str(error).strip() else type(error).__name__


def parallel_jobs(launcher: DictConfig) -> int:
    """How many jobs the launcher runs at once on this machine (joblib's n_jobs; 1 otherwise)."""
    if "joblib" not in str(launcher.get("_target_", "")):
        return 1
    from joblib import effective_n_jobs  # present whenever the joblib launcher is

    return effective_n_jobs(launcher.get("n_jobs") or 1)


def threads_per_job(launcher: DictConfig) -> int:
    """The launcher's `cpus_per_task` where it sets one (submitit), else an equal share of this machine's cores;
    never more than OMP_NUM_THREADS, where the user set it."""
    if launcher.get("cpus_per_task"):
        share = int(launcher.cpus_per_task)
    else:
        share = max(1, (os.cpu_count() or 1) // parallel_jobs(launcher))
    asked = os.environ.get("OMP_NUM_THREADS", "")
    return min(share, int(asked)) if asked.isdigit() and int(asked) > 0 else share


def share_cores() -> None:
    """Cap each job's torch threads, so that jobs running side by side do not oversubscribe the cores."""
    threads = threads_per_job(HydraConfig.get().launcher)
    torch.set_num_threads(threads)
    log.info("torch threads for this job: %d", threads)


def run_sweep_job(cfg: DictConfig) -> float:
    """Prepare and run one job; a raising job is logged and recorded as failed, and scores NaN for a sweeper.

    After SIGTERM or Ctrl+C the job returns at once without running (see sweeps/stop.py). After the
    job, one line says how the whole sweep stands (sweeps/progress.py).
    """
    hydra = HydraConfig.get()
    run_dir, sweep_dir = RunDir(hydra.runtime.output_dir), SweepDir(Path(hydra.sweep.dir).absolute())
    STOP.watch_signals()
    if STOP.stopped(sweep_dir.file(sweep_dir.STOP)):
        log.info("not run: the sweep was asked to stop")
        return math.nan
    share_cores()
    try:
        with run_dir.lock():
            score = run_locked(cfg, run_dir, sweep_dir)
    except RunBusy as busy:
        log.warning("skipped: %s", busy)
        return math.nan
    if not STOP.requested:
        log_progress(sweep_dir)
    return score


def run_locked(cfg: DictConfig, run_dir: RunDir, sweep_dir: SweepDir) -> float:
    """The job itself, its directory locked: a failure is written to its metrics.json, a signal noted."""
    if run_dir.finished():  # by another process resuming the same sweep, since this one launched it
        log.info("skipped: another process has finished this job")
        return math.nan
    hydra = HydraConfig.get()
    overrides = resumable_overrides(hydra.overrides.task) if cfg.resume else hydra.overrides.task
    try:
        check_sweep_strategy(cfg, str(hydra.launcher.get("_target_", "")))
        record = sweep_dir.record()
        differing = list(record.varying) if record is not None else overridden_keys(overrides)
        cfg = prepare(cfg, run_dir.path, overrides)
        return train_and_measure(cfg, run_dir, hydra.runtime.choices, differing)
    except TrainingInterrupted as stop:
        log.warning("%s", stop)
        STOP.requested = True
        return math.nan
    except Exception as error:
        log.error(
            "job failed: %s", named_first_line(error), exc_info=True
        )  # the whole traceback stays in the job's log
        run_dir.write_metrics({"status": "failed", "error": named_first_line(error)})
        return math.nan
