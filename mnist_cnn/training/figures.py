"""Figures of a run: its training curves, the confusion matrix and the digits it got wrong.

The same figures go to TensorBoard's Images tab (validation, every epoch) and, for the test set at
the end of the run, into the run's plots/ folder as PNGs: the seed study's training plots, per run.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from torch import Tensor  # noqa: E402

from mnist_cnn.rundir import RunDir  # noqa: E402

# The curves drawn, with the names older runs logged them under.
CURVES = {"train/loss": ("train/loss", "train/loss_step"), "val/acc": ("val/acc",)}
Mistake = tuple[Tensor, int, int]  # (image, true label, predicted label)


def read_curves(run: RunDir) -> dict[str, list[tuple[int, float]]]:
    """Step-level training loss and per-epoch validation accuracy from the run's TensorBoard events."""
    events = EventAccumulator(str(run.logger_dir(run.TENSORBOARD)))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    curves = {}
    for curve, names in CURVES.items():
        name = next((name for name in names if name in tags), None)
        if name:
            curves[curve] = [(event.step, event.value) for event in events.Scalars(name)]
    return curves


def curves_figure(runs: list[RunDir]) -> Figure:
    """The training loss and validation accuracy of each run against the training step."""
    figure, axes = plt.subplots(1, len(CURVES), figsize=(11, 4))
    for run in runs:
        curves = read_curves(run)
        for axis, curve in zip(axes, CURVES, strict=True):
            if curve in curves:
                steps, values = zip(*curves[curve], strict=True)
                axis.plot(steps, values, marker=".", label=run.path.name)
    for axis, curve in zip(axes, CURVES, strict=True):
        axis.set(xlabel="training step", title=curve)
        axis.grid(True, alpha=0.3)
    if runs:
        axes[-1].legend(fontsize="small")
    figure.tight_layout()
    return figure


def confusion_figure(confusion: Tensor, title: str) -> Figure:
    """True class against predicted class, each row as shares of its true class."""
    counts = confusion.cpu().numpy().astype(float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axis = plt.subplots(figsize=(5.5, 5))
    axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(counts):
        if count:
            color = "white" if shares[row, column] > 0.5 else "black"
            axis.text(column, row, f"{int(count)}", ha="center", va="center", fontsize=7, color=color)
    classes = range(len(counts))
    axis.set(xticks=classes, yticks=classes, xlabel="predicted", ylabel="true", title=title)
    figure.tight_layout()
    return figure


def mistakes_figure(mistakes: list[Mistake], title: str, columns: int = 8) -> Figure:
    """The misclassified digits, each titled with its true and predicted label."""
    rows = max(1, -(-len(mistakes) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.3 + 0.4), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (image, truth, predicted) in zip(axes.flat, mistakes, strict=False):
        axis.imshow(image.squeeze(0).numpy(), cmap="gray")
        axis.set_title(f"{truth} as {predicted}", fontsize=8, color="#b00020")
    figure.suptitle(title if mistakes else f"{title}: none", fontsize=10)
    figure.tight_layout()
    return figure


def save(figure: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
