"""Accuracy on hard handwriting: plain resize vs the old and the new preprocessing, default vs wild models.

    python -m benchmarks.real_world [seeds=42,1,2] [device=auto] [workers=<CPU cores>]
        [default=<run dir>,...] [wild=<run dir>,...] [runs=outputs/real_world] [limit_batches=<n>]
        [per_category=1000] [numbers=300] [calibration=300] [non_digits=300] [data_root=../shared/data]

A recipe's runs not given as directories are trained first, one per seed, on `device` (Lightning's
trainer.accelerator: auto, cpu, gpu, ...), `experiment=wild` for the wild one, into
<runs>/<recipe>-seed<seed>; a finished run already there is reused. limit_batches=<n> trains
only n batches an epoch: a check that the whole benchmark runs, not a measurement (give it its own
runs= folder). An accuracy is the mean over a recipe's runs. Rows: the categories of
mnist_cnn/wild/categories.py, made from the second half of MNIST's test set (`per_category` images
each), and the 440 labelled real-world images by source; the new preprocessing is read as predict
reads it, its grey kept for a run trained on grey ink (PixelClassifier.keeps_grey). Then wild minus
default per seed, composed 4-digit numbers read exactly, and per run the "not sure" threshold as
`calibrate` measures it on the first half of the test set (never on the rows above), how it does on
the rows, and the expected calibration error (ECE) on MNIST's test set and the real-world images;
last, how often each run is sure of a digit in scribbles and printed capital letters (it should not
be). Preprocessing and reading numbers, the slow parts, are spread over `workers` processes.
"""

from __future__ import annotations

import csv
import functools
import multiprocessing
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from benchmarks import old_preprocess
from benchmarks.common import DEFAULT_DATA, REPO
from mnist_cnn.cli import user_errors, whole_number
from mnist_cnn.errors import UserError
from mnist_cnn.wild.calibration import Mapper, calibrate, expected_calibration_error, preprocessed, tuning_views
from mnist_cnn.wild.categories import CATEGORIES, NON_DIGITS, REPORTING, generate, mnist_test, non_digits, numbers
from mnist_cnn.wild.classifier import PixelClassifier, load_classifier, probabilities
from mnist_cnn.wild.images import read_image
from mnist_cnn.wild.preprocess import SIZE, NoDigitFound, centre_by_mass, fit_box, to_mnist
from mnist_cnn.wild.reading import read

RECIPES = {"default": ["trainer.max_epochs=2"], "wild": ["experiment=wild"]}  # default: as the README trains it
DEVICES = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")  # what trainer.accelerator takes
Accuracies = dict[str, dict[str, dict[str, list[float]]]]  # recipe -> column -> row -> one accuracy per run


@dataclass(frozen=True)
class Settings:
    """The benchmark's arguments, checked."""

    seeds: list[int]
    device: str
    workers: int
    given: dict[str, list[Path]]  # recipe -> its runs given as directories
    runs: Path
    limit_batches: int | None
    per_category: int
    numbers: int
    calibration: int
    non_digits: int
    data_root: str


def parse_seeds(text: str) -> list[int]:
    try:
        return [int(seed) for seed in text.split(",")]
    except ValueError:
        raise UserError(f"seeds={text} is invalid: give whole numbers separated by commas, e.g. seeds=42,1,2") from None


KEYS = (
    *RECIPES,
    "seeds",
    "device",
    "workers",
    "runs",
    "limit_batches",
    "per_category",
    "numbers",
    "calibration",
    "non_digits",
)
KEYS += ("data_root",)


def settings(argv: list[str]) -> Settings:
    """The command line's key=value arguments; an unknown key, device or count is refused in one line."""
    args = OmegaConf.from_cli(argv)
    unknown = [key for key in args if key not in KEYS]
    if unknown:
        raise UserError(f"{unknown[0]} is not an argument of benchmarks.real_world: known keys: {', '.join(KEYS)}")
    device = str(args.get("device", "auto"))
    if device not in DEVICES:
        raise UserError(f"device={device} is invalid: allowed values are {' or '.join(DEVICES)}")
    return Settings(
        seeds=parse_seeds(str(args.get("seeds", "42,1,2"))),
        device=device,
        workers=whole_number(args, "workers", os.cpu_count() or 1),
        given={name: [Path(run) for run in str(args[name]).split(",")] for name in RECIPES if name in args},
        runs=Path(str(args.get("runs", REPO / "outputs" / "real_world"))),
        limit_batches=whole_number(args, "limit_batches", None),
        per_category=whole_number(args, "per_category", 1000),
        numbers=whole_number(args, "numbers", 300),
        calibration=whole_number(args, "calibration", 300),
        non_digits=whole_number(args, "non_digits", 300),
        data_root=str(args.get("data_root", DEFAULT_DATA)),
    )


def plain_resize(gray: np.ndarray) -> np.ndarray:
    """The naive baseline: the whole image scaled into a 20-px box and centred by mass, nothing else."""
    return np.clip(centre_by_mass(fit_box(gray.astype(np.float32))), 0, 1)


def or_blank(prepare: Callable[[np.ndarray], np.ndarray], gray: np.ndarray) -> np.ndarray:
    """A view where "no digit found" is an empty frame, which no model reads right: it counts as an error."""
    try:
        return prepare(gray)
    except NoDigitFound:
        return np.zeros((SIZE, SIZE), np.float32)


VIEWS = {
    "plain": plain_resize,
    "old": functools.partial(or_blank, old_preprocess.to_mnist),
    "new": functools.partial(or_blank, to_mnist),
    "new, grey kept": functools.partial(or_blank, functools.partial(to_mnist, keep_grey=True)),
}
COLUMNS = ("plain", "old", "new")  # "new" is read as predict reads it: grey kept for a run that keeps grey


def seen_by(run: PixelClassifier, view: str) -> str:
    """The view a run reads for a column: the new preprocessing keeps the grey for a model trained on grey ink."""
    return "new, grey kept" if view == "new" and run.keeps_grey else view


def one_thread() -> None:
    """A pool worker computes on one core; the pool spreads the work."""
    torch.set_num_threads(1)


@contextmanager
def spread_over(workers: int) -> Iterator[Mapper]:
    """A map that runs in `workers` processes (spawned: the parent holds torch's threads), or plain map."""
    if workers == 1:
        yield map
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=one_thread) as pool:
        yield functools.partial(pool.map, chunksize=8)


def train(name: str, seed: int, options: Settings) -> Path:
    """Train the named recipe with a seed on MNIST unless that run is there; its directory."""
    run_dir = options.runs / f"{name}-seed{seed}"
    if not (run_dir / "metrics.json").is_file():
        command = [sys.executable, "-m", "mnist_cnn.train", *RECIPES[name], f"seed={seed}"]
        command += [f"trainer.accelerator={options.device}", f"hydra.run.dir={run_dir}"]
        command += [f"data.root={options.data_root}", "data.download=false"]
        if options.limit_batches:
            command += [f"+trainer.limit_{part}_batches={options.limit_batches}" for part in ("train", "val")]
        subprocess.run(command, cwd=REPO, check=True)
    return run_dir


def run_dirs(options: Settings, name: str) -> list[Path]:
    """The runs given for a recipe, or one trained per seed."""
    return options.given.get(name) or [train(name, seed, options) for seed in options.seeds]


def load_labelled(folder: Path) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Grayscale images, labels and source names from the set's labels.csv."""
    with (folder / "labels.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    grays = [read_image(folder / row["path"]) for row in rows]
    return grays, np.array([int(row["label"]) for row in rows]), [row["path"].split("/")[0] for row in rows]


def labelled_rows(data_root: str, per_category: int) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """Row name -> grayscale images and labels: the generated categories (REPORTING half), then each real source."""
    images, labels = mnist_test(data_root, REPORTING)
    chosen = np.random.default_rng(0).choice(len(images), min(per_category, len(images)), replace=False)
    rows = {name: (generate(name, images[chosen]), labels[chosen]) for name in CATEGORIES}
    real, real_labels, sources = load_labelled(Path(data_root) / "real-world-digits")
    for source in sorted(set(sources)):
        picked = [index for index, name in enumerate(sources) if name == source]
        rows[source] = ([real[index] for index in picked], real_labels[picked])
    return rows


def all_views(rows, mapper: Mapper) -> dict[str, dict[str, np.ndarray]]:
    """View -> row -> the row's images as that view prepares them."""
    return {
        view: {row: np.stack(list(mapper(prepare, grays))) for row, (grays, _) in rows.items()}
        for view, prepare in VIEWS.items()
    }


def accuracies(models: dict[str, list[PixelClassifier]], views: dict[str, dict[str, np.ndarray]], rows) -> Accuracies:
    """Every run's accuracy on every row and column; the new view is read with test-time augmentation too."""
    table: Accuracies = defaultdict(lambda: defaultdict(dict))

    def accuracy(run: PixelClassifier, view: str, row: str, tta: bool = False) -> float:
        return float((probabilities(run, views[seen_by(run, view)][row], tta).argmax(1) == rows[row][1]).mean())

    for view in COLUMNS:
        for row in rows:
            for name, runs in models.items():
                table[name][view][row] = [accuracy(run, view, row) for run in runs]
                if view == "new":
                    table[name]["new+tta"][row] = [accuracy(run, view, row, tta=True) for run in runs]
    return table


TOTALS = ("generated (mean)", "real-world (all)")


def with_totals(table: Accuracies, counts: dict[str, int]) -> None:
    """Add the generated categories' mean and the real-world images' overall accuracy (weighted by source),
    with their image counts."""
    sources = [row for row in counts if row not in CATEGORIES]
    for columns in table.values():
        for by_row in columns.values():
            runs = len(by_row[sources[0]])
            by_row["generated (mean)"] = [
                float(np.mean([by_row[row][run] for row in CATEGORIES])) for run in range(runs)
            ]
            by_row["real-world (all)"] = [
                sum(by_row[row][run] * counts[row] for row in sources) / sum(counts[row] for row in sources)
                for run in range(runs)
            ]
    counts.update(
        zip(TOTALS, (sum(counts[row] for row in CATEGORIES), sum(counts[row] for row in sources)), strict=True)
    )


def print_accuracy(table: Accuracies, counts: dict[str, int]) -> None:
    columns = [(name, view) for name in table for view in table[name]]
    width = max(len(row) for row in counts)
    header = "  ".join(f"{name + ' ' + view:>13}" for name, view in columns)
    print(f"accuracy, mean over each recipe's runs\n{'row':<{width}}  {'n':>5}  {header}")
    for row, count in counts.items():
        cells = "  ".join(f"{np.mean(table[name][view][row]):>13.1%}" for name, view in columns)
        print(f"{row:<{width}}  {count:>5}  {cells}")


def print_wild_minus_default(table: Accuracies, counts: dict[str, int]) -> None:
    """Per seed (runs paired in order): the wild model's accuracy minus the default's, new preprocessing."""
    print("\nwild minus default, new preprocessing, per seed (percentage points)")
    for row in counts:
        wild, default = table["wild"]["new"][row], table["default"]["new"][row]
        print(f"{row:<28}  " + "  ".join(f"{100 * (w - d):+6.1f}" for w, d in zip(wild, default, strict=False)))


@functools.cache
def classifier_of(run_dir: Path) -> PixelClassifier:
    """A run's classifier, loaded once per process."""
    return load_classifier(run_dir)


def number_read(run_dir: Path, gray: np.ndarray) -> str:
    return read(classifier_of(run_dir), gray, numbers=True).number


def exactly_read(run_dir: Path, grays: list[np.ndarray], texts: list[str], mapper: Mapper) -> float:
    """The share of numbers the run reads exactly."""
    read_numbers = list(mapper(functools.partial(number_read, run_dir), grays))
    return float(np.mean([got == text for got, text in zip(read_numbers, texts, strict=True)]))


def print_numbers(runs: dict[str, list[Path]], options: Settings, mapper: Mapper) -> None:
    """Per run: the share of composed 4-digit numbers (from REPORTING digits) read exactly."""
    images, labels = mnist_test(options.data_root, REPORTING)
    grays, texts = numbers(images, labels, options.numbers)
    print(f"\ncomposed 4-digit numbers read exactly ({len(texts)}, from REPORTING digits), per run")
    for name, dirs in runs.items():
        exact = [exactly_read(run, grays, texts, mapper) for run in dirs]
        print(f"{name}: " + "  ".join(f"{share:.1%}" for share in exact) + f"  mean {np.mean(exact):.1%}")


def share(flags: np.ndarray) -> str:
    """The share of true flags as a percentage; n/a when there are none to count."""
    return f"{flags.mean():.2%}" if flags.size else "n/a"


def contrasts(models: dict[str, list[PixelClassifier]]) -> set[bool]:
    """Which of the new preprocessing's contrasts (grey kept or not) the runs read."""
    return {run.keeps_grey for runs in models.values() for run in runs}


def print_confidence(
    models, views: dict[str, dict[str, np.ndarray]], rows, options: Settings, mapper: Mapper
) -> dict[str, list[float]]:
    """Per run: the threshold `calibrate` finds on TUNING, the share of sure answers and their accuracy on the
    rows, and ECE; the thresholds, per recipe."""
    tuning = {
        keep_grey: tuning_views(options.data_root, options.calibration, keep_grey, mapper)
        for keep_grey in contrasts(models)
    }
    mnist, mnist_labels = mnist_test(options.data_root, slice(None))
    labels = np.concatenate([truth for _, truth in rows.values()])
    real = np.concatenate([np.full(len(truth), row not in CATEGORIES) for row, (_, truth) in rows.items()])
    print("\nconfidence, new preprocessing: threshold calibrated on the TUNING half, then on the rows above")
    thresholds: dict[str, list[float]] = defaultdict(list)
    for name, runs in models.items():
        for index, run in enumerate(runs):
            threshold = calibrate(run, *tuning[run.keeps_grey])["not_sure_below"]
            thresholds[name].append(threshold)
            scores = probabilities(run, np.concatenate([views[seen_by(run, "new")][row] for row in rows]))
            sure, right = scores.max(1) >= threshold, scores.argmax(1) == labels
            print(
                f"{name}[{index}] threshold {threshold:.3f}: generated sure {share(sure[~real])} "
                f"(right {share(right[~real & sure])}, not sure right {share(right[~real & ~sure])}); "
                f"real-world sure {share(sure[real])} (right {share(right[real & sure])}); "
                f"ECE MNIST test {expected_calibration_error(probabilities(run, mnist), mnist_labels):.4f}, "
                f"real-world {expected_calibration_error(scores[real], labels[real]):.4f}, "
                f"generated {expected_calibration_error(scores[~real], labels[~real]):.4f}"
            )
    return thresholds


def print_non_digits(models, thresholds: dict[str, list[float]], options: Settings, mapper: Mapper) -> None:
    """Per kind of non-digit (scribbles, printed letters): how often each run still answers a digit "sure"."""
    print(f"\nnon-digits ({options.non_digits} of each), new preprocessing: answered sure / no digit found, per run")
    for kind in NON_DIGITS:
        images = non_digits(kind, options.non_digits)
        seen = {
            keep_grey: list(mapper(functools.partial(preprocessed, keep_grey=keep_grey), images))
            for keep_grey in contrasts(models)
        }
        cells = []
        for name, runs in models.items():
            for run, threshold in zip(runs, thresholds[name], strict=True):
                views = seen[run.keeps_grey]
                found = [view for view in views if view is not None]
                sure = (probabilities(run, np.stack(found)).max(1) >= threshold).sum() if found else 0
                cells.append(f"{name} {sure / len(views):.1%} (no digit found {1 - len(found) / len(views):.1%})")
        print(f"{kind}, sure: " + "  ".join(cells))


def main(argv: list[str]) -> None:
    with user_errors():
        options = settings(argv)
        runs = {name: run_dirs(options, name) for name in RECIPES}
        models = {name: [classifier_of(run) for run in dirs] for name, dirs in runs.items()}
        rows = labelled_rows(options.data_root, options.per_category)
    counts = {row: len(labels) for row, (_, labels) in rows.items()}
    with spread_over(options.workers) as mapper:
        views = all_views(rows, mapper)
        table = accuracies(models, views, rows)
        with_totals(table, counts)
        print_accuracy(table, counts)
        print_wild_minus_default(table, counts)
        print_numbers(runs, options, mapper)
        thresholds = print_confidence(models, views, rows, options, mapper)
        print_non_digits(models, thresholds, options, mapper)


if __name__ == "__main__":
    main(sys.argv[1:])
