"""Single-thread jobs side by side (`hydra/launcher=joblib`) against one job at a time on every core, per batch size.

Run from the repository root, without OMP_NUM_THREADS (each job sets its own threads):
`python -m benchmarks.parallel_jobs [--images N] [--val-batches N] [--model fast] [--data ROOT]`.

For each of the seed grid's batch sizes, the same sweep of 2 x <cores> one-epoch jobs (learning
rates apart, `--images` training images each: 55,000 is a full epoch) runs twice as a real `-m`
sweep: with `hydra/launcher=joblib hydra.launcher.n_jobs=<cores>`, where sweeps/job.py caps each
job's torch to cores / jobs = 1 thread, and with `hydra/launcher=basic`, one job at a time with a
thread per core. It prints the jobs' time per job of each (their own wall times, so neither the
sweep's start nor joblib's worker start counts: a 150-job grid pays those once) and the sweep's
wall time, which is faster, and the verdict for the seed grid, whose shared plan trains every batch
size for the same number of epochs. The verdict is the default `+sweep=seed_grid` should launch with.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import DEFAULT_DATA, REPO, stopwatch
from mnist_cnn.rundir import SweepDir

BATCH_SIZES = (32, 64, 512)  # the seed grid's
CORES = os.cpu_count() or 1
LAUNCHERS = {  # the launcher's overrides, and how many jobs it runs at once
    "side by side": (["hydra/launcher=joblib", f"hydra.launcher.n_jobs={CORES}"], CORES),
    "one at a time": (["hydra/launcher=basic"], 1),
}


def seconds_per_job(
    launcher: list[str], at_once: int, batch_size: int, args: argparse.Namespace, folder: Path
) -> tuple[float, float]:
    """(wall time of the jobs per job, as `at_once` of them overlap; the sweep's wall time) of one sweep."""
    jobs = 2 * CORES
    rates = ",".join(f"{0.001 * (index + 1):g}" for index in range(jobs))
    command = [
        sys.executable,
        "-m",
        "mnist_cnn.train",
        "-m",
        f"model={args.model}",
        f"data.root={args.data}",
        "data.download=false",
        f"data.batch_size={batch_size}",
        "scheduler=none",
        "trainer.max_epochs=1",
        f"+trainer.limit_train_batches={max(1, args.images // batch_size)}",
        *([f"+trainer.limit_val_batches={args.val_batches}"] if args.val_batches is not None else []),
        "callbacks.progress.style=log",
        f"optim.lr={rates}",
        f"hydra.sweep.dir={folder}",
        *launcher,
    ]
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    with stopwatch() as timing:
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"the sweep failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    walls = [json.loads(job.metrics_file.read_text())["wall_time_s"] for job in SweepDir(folder).jobs()]
    return sum(walls) / at_once / len(walls), timing["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=55_000, help="training images per job (55,000: one epoch)")
    parser.add_argument("--val-batches", type=int, default=None, help="validation batches per epoch (default: all)")
    parser.add_argument("--model", default="fast", help="model=<this> (the grid runs fast or cnn3)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="an MNIST root (<root>/MNIST/raw)")
    args = parser.parse_args()
    print(f"model={args.model}, {CORES} cores, 2 x {CORES} one-epoch jobs of {args.images:,} images")
    totals = dict.fromkeys(LAUNCHERS, 0.0)
    for batch_size in BATCH_SIZES:
        figures = {}
        for name, (launcher, at_once) in LAUNCHERS.items():
            with tempfile.TemporaryDirectory() as folder:
                figures[name] = seconds_per_job(launcher, at_once, batch_size, args, Path(folder) / "sweep")
            totals[name] += figures[name][0]
        (side, side_sweep), (alone, alone_sweep) = figures["side by side"], figures["one at a time"]
        faster = "side by side" if side < alone else "one at a time"
        print(
            f"batch {batch_size:4}: side by side {side:6.1f} s per job (sweep {side_sweep:6.1f} s), "
            f"one at a time {alone:6.1f} s per job (sweep {alone_sweep:6.1f} s): {faster} "
            f"{max(side, alone) / min(side, alone):.2f}x faster"
        )
    best = min(totals, key=totals.get)
    print(
        f"seed grid (every batch size for as many epochs): {best} is faster, "
        f"{max(totals.values()) / min(totals.values()):.2f}x: "
        + ("hydra/launcher=joblib" if best == "side by side" else "hydra/launcher=basic")
        + " is the default conf/sweep/seed_grid.yaml should have"
    )


if __name__ == "__main__":
    main()
