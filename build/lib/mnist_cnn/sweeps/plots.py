"""PNG plots of a sweep: test accuracy against learning rate, and the best jobs' training curves."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402

from mnist_cnn.rundir import RunDir, SweepDir  # noqa: E402
from mnist_cnn.training.figures import curves_figure, save  # noqa: E402


def plot_accuracy_by_learning_rate(rows: list[dict[str, Any]], path: Path) -> None:
    """One panel per optimizer, one line per batch size; diverged and failed jobs are left out."""
    # optimizer -> batch size -> learning rate -> test accuracy; jobs that differ only in other axes
    # (epochs, ...) share a point, which shows the best of them.
    series: dict[str, dict[Any, dict[float, float]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        config = row["config"]
        if row["status"] == "ok" and config["optim.lr"] is not None:
            points = series[config["optim"]][config["data.batch_size"]]
            points[config["optim.lr"]] = max(points.get(config["optim.lr"], 0.0), row["test/acc"])
    optimizers = sorted(series) or ["(no finished jobs)"]
    figure, axes = plt.subplots(1, len(optimizers), figsize=(5 * len(optimizers), 4), squeeze=False, sharey=True)
    for axis, optimizer in zip(axes[0], optimizers, strict=True):
        for batch_size, points in sorted(series[optimizer].items()):
            rates = sorted(points)
            axis.plot(rates, [points[lr] for lr in rates], marker="o", label=f"batch {batch_size}")
        axis.set(xscale="log", xlabel="learning rate", title=f"optim={optimizer}")
        axis.grid(True, alpha=0.3)
        if series[optimizer]:
            axis.legend()
    axes[0][0].set_ylabel("test accuracy")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_training_curves(sweep_dir: SweepDir, jobs: list[str], path: Path) -> None:
    save(curves_figure([RunDir(sweep_dir.path / job) for job in jobs]), path)
