"""Rebuild a sweep's summary and draw its plots: `python -m mnist_cnn.report <sweep dir>`.

The summary is also written automatically at the end of every `-m` run; this command redoes it
from the job directories (after adding jobs, or for a sweep that was interrupted) and adds PNGs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    from mnist_cnn.errors import UserError
    from mnist_cnn.plots import plot_accuracy_by_learning_rate, plot_training_curves
    from mnist_cnn.summary import job_dirs, summarize

USAGE = "usage: python -m mnist_cnn.report <sweep directory, e.g. outputs/sweeps/...>"
CURVES_OF_BEST = 3  # how many of the best jobs get their training curves drawn


def report(sweep_dir: Path) -> list[Path]:
    """Write summary.csv/.md, selected_model/ and the plots; returns the files written."""
    if not sweep_dir.is_dir() or not job_dirs(sweep_dir):
        raise UserError(f"{sweep_dir} holds no sweep jobs (no */.hydra/hydra.yaml): pass a folder under outputs/sweeps/")
    rows = summarize(sweep_dir)
    finished = sorted((row for row in rows if row["status"] == "ok"), key=lambda row: row["val/acc"], reverse=True)
    plot_accuracy_by_learning_rate(rows, sweep_dir / "test_acc_by_lr.png")
    plot_training_curves(sweep_dir, [row["job"] for row in finished[:CURVES_OF_BEST]], sweep_dir / "best_curves.png")
    return [sweep_dir / name for name in ("summary.csv", "summary.md", "test_acc_by_lr.png", "best_curves.png")]


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit(USAGE)
    try:
        written = report(Path(argv[0]))
    except UserError as error:
        sys.exit(f"error: {error}")
    print("\n".join(str(path) for path in written))


if __name__ == "__main__":
    main(sys.argv[1:])
