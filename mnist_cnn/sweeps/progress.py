"""One line after each sweep job: how the whole sweep stands, and how long the rest will take.

    sweep: 37/150 jobs done (35 ok, 1 diverged, 1 failed), best val/acc 0.9921 (12_optim=adam,...);
    1:02:13 elapsed, about 2:40:05 left

Each job writes it from its own process, from the sweep's plan (sweeps/plan.py) and the finished
jobs' metrics.json, so the line comes with every launcher. The time left is the epochs still to
train at the rate this session has trained epochs so far (a resumed sweep counts from its resume).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from mnist_cnn.rundir import SweepDir

log = logging.getLogger(__name__)
STATUSES = ("ok", "diverged", "failed")


def log_progress(sweep_dir: SweepDir) -> None:
    """Log the progress line; a sweep without a plan (an Optuna search) has no total to count against."""
    if sweep_dir.file(sweep_dir.PLAN).is_file():
        jobs = sweep_dir.numbered_jobs().items()
        finished = {num: (job.path.name, job.read_metrics()) for num, job in jobs if job.metrics_file.is_file()}
        log.info("%s", progress_line(sweep_dir.read_plan(), finished, time.time()))


def progress_line(plan: dict[str, Any], finished: dict[int, tuple[str, dict[str, Any]]], now: float) -> str:
    """The line from the plan and {job number: (its folder's name, its metrics)} of the jobs that have metrics."""
    epochs = {job["num"]: job["epochs"] for job in plan["jobs"]}
    done = {num: metrics for num, (_, metrics) in finished.items() if metrics.get("status") in STATUSES}
    counts = Counter(metrics["status"] for metrics in done.values())
    line = f"sweep: {len(done)}/{len(epochs)} jobs done ({', '.join(f'{counts[s]} {s}' for s in STATUSES)})"
    scores = [(metrics["val/acc"], finished[num][0]) for num, metrics in done.items() if metrics["status"] == "ok"]
    if scores:
        line += ", best val/acc {:.4f} ({})".format(*max(scores))
    elapsed = now - plan["started"]
    trained = sum(epochs.get(num, 0) for num in done if num not in plan["done_before"])
    left = sum(count for num, count in epochs.items() if num not in done)
    estimate = f"about {clock(elapsed * left / trained)} left" if trained else "the time left is known after a job"
    return f"{line}; {clock(elapsed)} elapsed, {estimate}"


def clock(seconds: float) -> str:
    """H:MM:SS."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
