"""Rebuild a sweep's summary and draw its plots: `python -m mnist_cnn.report sweep_dir=<sweep dir>`.

The summary is also written automatically at the end of every `-m` run; this command redoes it
from the job directories (after adding jobs, or for a sweep that was interrupted) and adds PNGs.
"""

from __future__ import annotations

from pathlib import Path

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    from mnist_cnn.cli import Command, Option, parse_arguments, user_errors
    from mnist_cnn.errors import UserError
    from mnist_cnn.rundir import SweepDir
    from mnist_cnn.sweeps.plots import plot_accuracy_by_learning_rate, plot_training_curves
    from mnist_cnn.sweeps.summary import summarize

COMMAND = Command(
    "report",
    "Rebuild a sweep's summary and selected model from its job directories, and draw its plots.",
    {"sweep_dir": Option("a sweep directory, e.g. outputs/sweeps/<date>_<time>_<tag>", required=True)},
)
CURVES_OF_BEST = 3  # how many of the best jobs get their training curves drawn


def report(sweep_dir: Path) -> list[Path]:
    """Write the summary, the selected model and the plots; returns the files written."""
    sweep = SweepDir(sweep_dir)
    if not sweep.jobs():
        raise UserError(
            f"{sweep_dir} holds no sweep jobs (no numbered */.hydra/hydra.yaml): pass a folder under outputs/sweeps/"
        )
    rows = summarize(sweep)
    finished = sorted((row for row in rows if row["status"] == "ok"), key=lambda row: row["val/acc"], reverse=True)
    plot_accuracy_by_learning_rate(rows, sweep.file(sweep.ACCURACY_PLOT))
    plot_training_curves(sweep, [row["job"] for row in finished[:CURVES_OF_BEST]], sweep.file(sweep.CURVES_PLOT))
    return [sweep.file(name) for name in (sweep.SUMMARY_CSV, sweep.SUMMARY_MD, sweep.ACCURACY_PLOT, sweep.CURVES_PLOT)]


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        written = report(Path(str(args.sweep_dir)))
    print("\n".join(str(path) for path in written))


if __name__ == "__main__":
    main()
