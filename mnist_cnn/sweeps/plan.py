"""A grid sweep's plan: every job with its number, and which jobs continue another job's training.

Jobs that differ only in `trainer.max_epochs` form a chain when their configs allow it: the
shortest trains from scratch, and each longer one continues the next shorter one's run
(`continue_from`) for the epochs in between, so the chain costs the epochs of its longest job.
Jobs are numbered level by level (every chain's first job, then every second job, ...), so each
level is one batch for the launcher, run after the level it continues. Without chains the numbers
are the grid's own order, as Hydra's basic sweeper gives them.

The plan is plain data, saved in the sweep directory: a resumed sweep checks it is the same grid,
and each job's progress line reads it. Nothing here imports torch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

from omegaconf import DictConfig

from mnist_cnn.training.schedules import spans_the_run

MAX_EPOCHS = "trainer.max_epochs"


def override_key(line: str) -> str:
    """`+trainer.max_epochs=10` -> `trainer.max_epochs`."""
    return line.split("=", 1)[0].lstrip("+~")


@dataclass(frozen=True)
class GridJob:
    """One combination of the grid, before it is numbered."""

    overrides: tuple[str, ...]
    max_epochs: int
    unshared_because: str | None = None  # why it cannot continue another job's run (None: it can)


@dataclass(frozen=True)
class PlannedJob:
    num: int
    overrides: tuple[str, ...]
    max_epochs: int
    epochs: int  # the epochs it trains itself: its max_epochs, less those of the job it continues
    after: int | None = None  # the number of the job whose run it continues
    level: int = 0  # how many jobs of its chain come before it


def why_not_shared(cfg: DictConfig) -> str | None:
    """Why a job with this config must train all its epochs itself (None: it can continue a shorter job's run).

    Continuing is exact only when nothing in the run depends on how long it will be, and the
    checkpoint it continues from carries everything the run keeps (last.ckpt and torch's random state).
    """
    if spans_the_run(cfg.scheduler):
        return f"its {cfg.scheduler._target_.rsplit('.', 1)[-1]} schedule is sized to each run's length"
    callbacks = {name: node for name, node in cfg.callbacks.items() if node is not None}
    if any(str(node.get("_target_", "")).endswith("EarlyStopping") for node in callbacks.values()):
        return "early stopping ends each run on its own"
    for needed in ("last_checkpoint", "random_state"):
        if needed not in callbacks:
            return f"callbacks.{needed} is off, and a continued run needs it"
    if cfg.trainer.get("fast_dev_run") or cfg.trainer.get("max_steps", -1) not in (-1, None):
        return "fast_dev_run or max_steps ends each run by steps"
    if cfg.get("continue_from") or cfg.get("resume"):
        return "continue_from or resume is given"
    return None


def plan_jobs(grid: Sequence[GridJob]) -> list[PlannedJob]:
    """Number the grid's jobs, chaining those that differ only in max_epochs (see the module's docstring)."""
    previous = shorter_jobs(grid)
    levels: dict[int, int] = {}
    for index in range(len(grid)):
        chain = [index]
        while chain[-1] in previous:
            chain.append(previous[chain[-1]])
        levels[index] = len(chain) - 1
    order = sorted(range(len(grid)), key=lambda index: (levels[index], index))
    numbers = {index: num for num, index in enumerate(order)}
    planned = []
    for num, index in enumerate(order):
        job, before = grid[index], previous.get(index)
        start = grid[before].max_epochs if before is not None else 0
        after = numbers[before] if before is not None else None
        planned.append(PlannedJob(num, job.overrides, job.max_epochs, job.max_epochs - start, after, levels[index]))
    return planned


def shorter_jobs(grid: Sequence[GridJob]) -> dict[int, int]:
    """For each job that can continue another: the index of the job it continues (same overrides, fewer epochs)."""
    chains: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for index, job in enumerate(grid):
        if job.unshared_because is None and any(override_key(line) == MAX_EPOCHS for line in job.overrides):
            chains[tuple(line for line in job.overrides if override_key(line) != MAX_EPOCHS)].append(index)
    previous = {}
    for members in chains.values():
        ordered = sorted(members, key=lambda index: grid[index].max_epochs)
        for shorter, longer in pairwise(ordered):
            if grid[shorter].max_epochs < grid[longer].max_epochs:
                previous[longer] = shorter
    return previous


def levels(plan: Sequence[PlannedJob]) -> list[list[PlannedJob]]:
    """The plan's jobs level by level: each level only continues jobs of the levels before it."""
    grouped: dict[int, list[PlannedJob]] = defaultdict(list)
    for job in plan:
        grouped[job.level].append(job)
    return [grouped[level] for level in sorted(grouped)]


Launch = tuple[PlannedJob, list[str]]  # a job and the overrides it is launched with


def consecutive(jobs: Iterable[Launch], most: int | None) -> Iterator[list[Launch]]:
    """Runs of jobs with consecutive numbers, at most `most` long: a launcher numbers a batch from its first job."""
    batch: list[Launch] = []
    for job, overrides in jobs:
        if batch and (job.num != batch[-1][0].num + 1 or len(batch) == most):
            yield batch
            batch = []
        batch.append((job, overrides))
    if batch:
        yield batch


def describe_sharing(grid: Sequence[GridJob], plan: Sequence[PlannedJob]) -> str | None:
    """The log line that says what the sweep shares, or why it does not; None for a grid without an epochs axis."""
    epochs_axis = {job.max_epochs for job in grid if any(override_key(line) == MAX_EPOCHS for line in job.overrides)}
    if len(epochs_axis) < 2:
        return None
    trained, alone = sum(job.epochs for job in plan), sum(job.max_epochs for job in plan)
    trainings = sum(job.after is None for job in plan)
    reasons = sorted({job.unshared_because for job in grid if job.unshared_because})
    if trained == alone:
        return f"epoch prefixes not shared, every job trains all its epochs itself: {'; '.join(reasons)}"
    line = (
        f"sharing epoch prefixes: {len(plan)} jobs as {trainings} trainings, "
        f"{trained:,} epochs instead of {alone:,}: each longer job continues the run of the next shorter one"
    )
    return line + (f" (not shared where {'; '.join(reasons)})" if reasons else "")


def plan_record(plan: Sequence[PlannedJob], started: float, done_before: Iterable[int]) -> dict[str, Any]:
    """The plan as saved in the sweep directory, with this session's start and the jobs finished before it."""
    return {"started": started, "done_before": sorted(done_before), "jobs": [asdict(job) for job in plan]}


def planned_jobs(record: dict[str, Any]) -> list[PlannedJob]:
    return [PlannedJob(**{**job, "overrides": tuple(job["overrides"])}) for job in record["jobs"]]


def grid_difference(saved: Sequence[PlannedJob], now: Sequence[PlannedJob]) -> str | None:
    """What differs between the grid a sweep started with and the grid its command gives now (None: the same)."""
    if len(saved) != len(now):
        return f"it started as {len(saved)} jobs and its command now gives {len(now)}"
    for before, after in zip(saved, now, strict=True):
        if before.overrides != after.overrides:
            was = sorted(set(before.overrides) - set(after.overrides))
            is_now = sorted(set(after.overrides) - set(before.overrides))
            return f"job {before.num} was {' '.join(was) or 'in another order'}, now {' '.join(is_now) or 'the same'}"
        if before.after != after.after:
            return (
                f"job {before.num} would {continuing(before)} when the sweep started, now it would {continuing(after)}"
            )
    return None


def continuing(job: PlannedJob) -> str:
    return "train on its own" if job.after is None else f"continue job {job.after}'s run"
