"""The seed grid with and without shared epoch prefixes, in one run, and the full-data grid's projected time.

Run from the repository root: `python -m benchmarks.seed_grid [--batches N] [--val-batches N] [--data ROOT]
[overrides...]`; overrides narrow the grid for a quick check (`optim=adam data.batch_size=32`: 5 jobs).

1. The whole seed grid (`-m +sweep=seed_grid model=fast`: 150 jobs), each epoch cut to `--batches`
   training and `--val-batches` validation batches (`trainer.limit_*_batches`, which also limit the
   final measurement), deterministic, one job at a time (`hydra/launcher=basic`, every core), twice
   as real sweeps: `hydra.sweeper.share_prefixes=false` and `true`. Prints the epochs each trained
   (from its sweep_plan.json), its wall time, their ratio, and whether the two summaries agree.
2. The full-data grid on this machine: training images/s of `fast` and `cnn3` at each of the grid's
   batch sizes (the Lightning loop `mnist_cnn.train` builds, benchmarks/overhead.py) and evaluation
   images/s, then each plan of part 1 priced at full size: its epochs (55k training and 5k validation
   images each) and, per job, the final measurement (70k images), plus the costs that do not grow
   with the data (checkpoints, logs, loops, starting a job): part 1's two wall times, less what its
   limited batches take at the measured rates, give one such cost per epoch and one per job.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import DEFAULT_DATA, REPO, stopwatch
from benchmarks.overhead import lightning_images_per_second
from mnist_cnn.rundir import SweepDir
from mnist_cnn.training.config import compose_config
from mnist_cnn.training.module import DigitClassifier
from mnist_cnn.training.recipe import build_datamodule
from mnist_cnn.training.scoring import evaluate

MODELS = ("fast", "cnn3")
TRAIN_IMAGES, VAL_IMAGES, TEST_IMAGES = 55_000, 5_000, 10_000  # data.val_size's 5k held out of the 60k
EVAL_BATCH = 250  # data.eval_batch_size


def sweep(data: Path, folder: Path, share: bool, batches: int, val_batches: int, extra: list[str]) -> dict[str, Any]:
    """One limited seed-grid sweep in a fresh process: its wall time, plan and summary rows."""
    command = [
        sys.executable,
        "-m",
        "mnist_cnn.train",
        "-m",
        "+sweep=seed_grid",
        "model=fast",
        f"data.root={data}",
        "data.download=false",
        f"+trainer.limit_train_batches={batches}",
        f"+trainer.limit_val_batches={val_batches}",
        f"+trainer.limit_test_batches={val_batches}",
        "trainer.deterministic=true",
        "callbacks.progress.style=log",
        "hydra/launcher=basic",
        f"hydra.sweeper.share_prefixes={str(share).lower()}",
        f"hydra.sweep.dir={folder}",
        *extra,
    ]
    with stopwatch() as timing:
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the sweep failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    sweep_dir = SweepDir(folder)
    with sweep_dir.file(sweep_dir.SUMMARY_CSV).open() as file:
        rows = list(csv.DictReader(file))
    plan, varying = sweep_dir.read_plan()["jobs"], list(sweep_dir.record().varying)
    epochs = sum(job["epochs"] for job in plan)
    return {"seconds": timing["seconds"], "plan": plan, "rows": rows, "epochs": epochs, "varying": varying}


def differing_jobs(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """The jobs, by their values of the grid's keys, whose rows differ in any column but their number and wall time."""

    def by_job(run: dict[str, Any]) -> dict[tuple[str, ...], dict[str, str]]:
        return {
            tuple(row[key] for key in run["varying"]): {
                key: value for key, value in row.items() if key not in ("job", "wall_time_s")
            }
            for row in run["rows"]
        }

    rows, others = by_job(first), by_job(second)
    return [f"{','.join(job)}: {row} vs {others.get(job)}" for job, row in rows.items() if others.get(job) != row] + [
        ",".join(job) + ": only in the second" for job in others.keys() - rows.keys()
    ]


def throughput(data: Path, model: str, batch_sizes: list[int], images: int) -> tuple[dict[int, float], float]:
    """Training images/s at each of the grid's batch sizes, and evaluation images/s, of one model on the full data."""
    training = {}
    for batch_size in batch_sizes:
        batches = max(3, images // batch_size)
        cfg = compose_config(
            f"data.root={data}",
            "data.download=false",
            "trainer=cpu",
            "trainer.max_epochs=1",
            "scheduler=none",
            f"model={model}",
            f"data.batch_size={batch_size}",
            f"+trainer.limit_train_batches={batches}",
            "+trainer.limit_val_batches=0",
        )
        datamodule = build_datamodule(cfg)
        datamodule.setup()
        module = DigitClassifier.from_config(cfg)
        training[batch_size] = lightning_images_per_second(cfg, datamodule, module, batches)
    val_images, val_labels = datamodule.splits["val"]
    count = min(len(val_labels), images)
    with stopwatch() as timing:
        evaluate(module.network, val_images[:count], val_labels[:count], EVAL_BATCH)
    return training, count / timing["seconds"]


@cache
def default_batch_size() -> int:
    return compose_config().data.batch_size


def batch_size_of(job: dict[str, Any]) -> int:
    given = [line.split("=")[1] for line in job["overrides"] if line.startswith("data.batch_size=")]
    return int(given[0]) if given else default_batch_size()


@dataclass(frozen=True)
class Fixed:
    """What an epoch and a job cost beyond their images: checkpoints, logs, Lightning's loops, a job's start."""

    per_epoch: float
    per_job: float


def grid_seconds(plan: list[dict[str, Any]], training: dict[int, float], eval_rate: float, fixed: Fixed) -> float:
    """A plan priced at full size: each job's own epochs and its final measurement, with the fixed costs."""
    epochs = sum(
        job["epochs"] * (TRAIN_IMAGES / training[batch_size_of(job)] + VAL_IMAGES / eval_rate + fixed.per_epoch)
        for job in plan
    )
    return epochs + len(plan) * ((TRAIN_IMAGES + VAL_IMAGES + TEST_IMAGES) / eval_rate + fixed.per_job)


def limited_compute(run: dict[str, Any], training: dict[int, float], eval_rate: float, batches: int, val: int) -> float:
    """The seconds part 1's limited batches take at the measured rates, in one sweep."""
    val_seconds = val * EVAL_BATCH / eval_rate
    total = 0.0
    for job in run["plan"]:
        images = batches * batch_size_of(job)
        total += job["epochs"] * (images / training[batch_size_of(job)] + val_seconds)
        total += (batches + 2 * val) * EVAL_BATCH / eval_rate  # the final measurement, in batches of EVAL_BATCH
    return total


def fixed_costs(
    alone: dict[str, Any], shared: dict[str, Any], rates: tuple[dict[int, float], float], args: argparse.Namespace
) -> Fixed:
    """Solved from the two sweeps of part 1: the same jobs, different epoch counts."""
    rest = [run["seconds"] - limited_compute(run, *rates, args.batches, args.val_batches) for run in (alone, shared)]
    per_epoch = max(0.0, (rest[0] - rest[1]) / (alone["epochs"] - shared["epochs"]))
    return Fixed(per_epoch, max(0.0, (rest[0] - alone["epochs"] * per_epoch) / len(alone["plan"])))


def clock(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60:d} h {minutes % 60:02d} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2, help="training batches per epoch in part 1")
    parser.add_argument("--val-batches", type=int, default=1, help="validation (and test) batches in part 1")
    parser.add_argument("--measure-images", type=int, default=12_800, help="images timed per throughput figure")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="an MNIST root (<root>/MNIST/raw)")
    parser.add_argument("overrides", nargs="*", help="added to both sweeps, e.g. to narrow the grid for a check")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        runs = [
            sweep(args.data, Path(folder) / name, share, args.batches, args.val_batches, args.overrides)
            for name, share in (("alone", False), ("shared", True))
        ]
    alone, shared = runs
    print(
        f"seed grid, model=fast, each epoch cut to {args.batches} training and {args.val_batches} validation "
        f"batches, one job at a time, torch threads {torch.get_num_threads()}"
    )
    print(f"{'':24}{'jobs':>6}{'epochs trained':>16}{'wall time':>12}")
    for name, run in (("without sharing", alone), ("with sharing", shared)):
        print(f"{name:24}{len(run['plan']):>6}{run['epochs']:>16,}{run['seconds']:>10.1f} s")
    print(
        f"{'ratio without / with':24}{'':>6}{alone['epochs'] / shared['epochs']:>15.2f}x"
        f"{alone['seconds'] / shared['seconds']:>11.2f}x"
    )
    differing = differing_jobs(alone, shared)
    agree = not differing
    print(f"summaries agree (every job, every column but its number and wall time): {'yes' if agree else 'NO'}")
    for line in differing[:5]:
        print(f"  differs: {line}")

    batch_sizes = sorted({batch_size_of(job) for job in alone["plan"]})
    rates = {model: throughput(args.data, model, batch_sizes, args.measure_images) for model in MODELS}
    fixed = fixed_costs(alone, shared, rates["fast"], args)
    print(f"\nfull data here, torch threads {torch.get_num_threads()} (training images/s by batch size; evaluation):")
    for model, (training, eval_rate) in rates.items():
        by_size = "  ".join(f"{size}: {training[size]:,.0f}" for size in batch_sizes)
        print(f"  {model:5} {by_size}  eval: {eval_rate:,.0f}")
    print(
        f"beyond their images: {fixed.per_epoch:.2f} s per epoch, {fixed.per_job:.2f} s per job "
        "(checkpoints, logs, loops, starting a job; from the two sweeps above)"
    )
    print(f"projected full-data time of this grid ({len(alone['plan'])} jobs) on this machine, one job at a time:")
    for model, (training, eval_rate) in rates.items():
        before = grid_seconds(alone["plan"], training, eval_rate, fixed)
        after = grid_seconds(shared["plan"], training, eval_rate, fixed)
        print(f"  {model:5} without sharing {clock(before)}, with sharing {clock(after)} ({before / after:.2f}x)")
    if not agree:
        raise SystemExit("the shared sweep's results differ from the unshared sweep's")


if __name__ == "__main__":
    main()
