"""Report on finished work: `python -m mnist_cnn.report sweep_dir=<sweep dir>` or `runs=<runs>`.

With `sweep_dir=` it rebuilds a sweep's summary from the job directories (also written automatically
at the end of every `-m` run; this redoes it after adding jobs, or for an interrupted sweep) and
draws its plots. With `runs=` it prints a Markdown table of how far each run generalizes: one row
per run, one column per data set, from its own test accuracy and its `evaluate data=<name>` results.
"""

from __future__ import annotations

import glob
from pathlib import Path

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    from mnist_cnn.cli import Command, Option, parse_arguments, user_errors
    from mnist_cnn.errors import UserError
    from mnist_cnn.rundir import RunDir, SweepDir
    from mnist_cnn.sweeps.plots import plot_accuracy_by_learning_rate, plot_training_curves
    from mnist_cnn.sweeps.summary import summarize
    from mnist_cnn.training.config import load_run_config
    from mnist_cnn.training.datasets import describe

COMMAND = Command(
    "report",
    "Rebuild a sweep's summary, selected model and plots (sweep_dir=), or print several runs' test accuracy on "
    "every data set they were evaluated on side by side (runs=).",
    {
        "sweep_dir": Option("a sweep directory, e.g. outputs/sweeps/<date>_<time>_<tag>"),
        "runs": Option("run directories: a sweep or a folder of runs, or a glob in quotes such as 'outputs/runs/*'"),
    },
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


def find_runs(pattern: str) -> list[RunDir]:
    """The finished runs (config.yaml and metrics.json) in a folder of runs or a sweep, or matching a glob."""
    folder = Path(pattern)
    if folder.is_dir() and not RunDir(folder).config_file.is_file():
        paths = [path for path in sorted(folder.iterdir()) if path.name != SweepDir.SELECTED]  # a copy of a job
    else:
        paths = sorted(map(Path, glob.glob(pattern)))
    runs = [
        RunDir(path) for path in paths if RunDir(path).config_file.is_file() and RunDir(path).metrics_file.is_file()
    ]
    if not runs:
        raise UserError(f"runs={pattern} holds no finished runs (config.yaml and metrics.json): pass outputs/runs/*")
    return runs


def generality(runs: list[RunDir]) -> str:
    """A Markdown table: each run's test accuracy on its own data set (bold) and on every other it was evaluated on."""
    rows = []
    for run in runs:
        own = describe(load_run_config(run).data).label
        scores = {label: result["test/acc"] for label, result in run.evaluations_on().items()}
        scores[own] = run.read_metrics().get("test/acc")
        rows.append((run.path.name, own, scores))
    labels = sorted({label for _, _, scores in rows for label in scores})
    lines = ["| run | trained on | " + " | ".join(labels) + " |", "|" + " --- |" * (len(labels) + 2)]
    for name, own, scores in rows:
        cells = [percent(scores.get(label), bold=label == own) for label in labels]
        lines.append(f"| {name} | {own} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def percent(accuracy: float | None, bold: bool) -> str:
    if accuracy is None:
        return ""
    return f"**{100 * accuracy:.2f}%**" if bold else f"{100 * accuracy:.2f}%"


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        if (args.sweep_dir is None) == (args.runs is None):
            raise UserError("give either sweep_dir=<sweep> or runs=<runs> (see --help)")
        output = (
            generality(find_runs(str(args.runs)))
            if args.runs
            else "\n".join(map(str, report(Path(str(args.sweep_dir)))))
        )
    print(output)


if __name__ == "__main__":
    main()
