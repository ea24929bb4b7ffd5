"""Accuracy on hard handwriting: plain resize vs the old and the new preprocessing, default vs wild models.

    python -m benchmarks.real_world [default=<run dir>,...] [wild=<run dir>,...] [seeds=42,1,2]
        [per_category=1000] [numbers=300] [calibration=300] [data_root=../shared/data]

A recipe's runs not given as directories are trained first, one per seed (`experiment=wild` for
the wild one), into outputs/real_world/<recipe>-seed<seed>; an accuracy is the mean over a recipe's
runs. Rows: the categories of mnist_cnn/wild/categories.py, made from the second half of MNIST's
test set (`per_category` images each), and the 440 labelled real-world images by source. Then
wild minus default per seed, composed 4-digit numbers read exactly, and per run the confidence
threshold calibrated on the first half of the test set (never on the rows above), how it does on
the rows, and the expected calibration error (ECE) on MNIST's test set and the real-world images.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from benchmarks import old_preprocess
from benchmarks.common import DEFAULT_DATA, REPO
from mnist_cnn.wild.categories import CATEGORIES, REPORTING, TUNING, generate, mnist_test, numbers
from mnist_cnn.wild.classifier import PixelClassifier, load_classifier, probabilities
from mnist_cnn.wild.images import read_image
from mnist_cnn.wild.preprocess import SIZE, NoDigitFound, centre_by_mass, fit_box, to_mnist
from mnist_cnn.wild.reading import read

RECIPES = {"default": ["trainer.max_epochs=2"], "wild": ["experiment=wild"]}  # default: as the README trains it
SURE_ACCURACY = 0.99  # the threshold is the lowest confidence above which answers were right this often
ECE_BINS = 15
Accuracies = dict[str, dict[str, dict[str, list[float]]]]  # recipe -> column -> row -> one accuracy per run


def plain_resize(gray: np.ndarray) -> np.ndarray:
    """The naive baseline: the whole image scaled into a 20-px box and centred by mass, nothing else."""
    return np.clip(centre_by_mass(fit_box(gray.astype(np.float32))), 0, 1)


def or_blank(prepare: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A view where "no digit found" is an empty frame, which no model reads right: it counts as an error."""

    def view(gray: np.ndarray) -> np.ndarray:
        try:
            return prepare(gray)
        except NoDigitFound:
            return np.zeros((SIZE, SIZE), np.float32)

    return view


VIEWS = {"plain": plain_resize, "old": or_blank(old_preprocess.to_mnist), "new": or_blank(to_mnist)}


def train(name: str, seed: int, data_root: str) -> Path:
    """Train the named recipe with a seed on MNIST (trainer defaults) unless that run exists; its directory."""
    run_dir = REPO / "outputs" / "real_world" / f"{name}-seed{seed}"
    if not (run_dir / "metrics.json").is_file():
        command = [sys.executable, "-m", "mnist_cnn.train", *RECIPES[name], f"seed={seed}"]
        command += [f"data.root={data_root}", "data.download=false", f"hydra.run.dir={run_dir}"]
        subprocess.run(command, cwd=REPO, check=True)
    return run_dir


def run_dirs(args, name: str, data_root: str) -> list[Path]:
    """The runs given for a recipe (comma-separated), or one trained per seed."""
    if name in args:
        return [Path(folder) for folder in str(args[name]).split(",")]
    return [train(name, int(seed), data_root) for seed in str(args.get("seeds", "42,1,2")).split(",")]


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


def accuracies(models: dict[str, list[PixelClassifier]], views: dict[str, dict[str, np.ndarray]], rows) -> Accuracies:
    """Every run's accuracy on every row and view; the new view is read with test-time augmentation too."""
    table: Accuracies = defaultdict(lambda: defaultdict(dict))
    for view, by_row in views.items():
        for row, digits in by_row.items():
            labels = rows[row][1]
            for name, runs in models.items():
                table[name][view][row] = [
                    float((probabilities(run, digits).argmax(1) == labels).mean()) for run in runs
                ]
                if view == "new":
                    table[name]["new+tta"][row] = [
                        float((probabilities(run, digits, tta=True).argmax(1) == labels).mean()) for run in runs
                    ]
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


def numbers_read(run: PixelClassifier, grays: list[np.ndarray], texts: list[str]) -> float:
    """The share of numbers read exactly."""
    return float(
        np.mean([read(run, gray, numbers=True).number == text for gray, text in zip(grays, texts, strict=True)])
    )


def expected_calibration_error(scores: np.ndarray, labels: np.ndarray) -> float:
    """ECE: the gap between confidence and accuracy, averaged over ECE_BINS equal-width confidence bins."""
    confidence, correct = scores.max(1), scores.argmax(1) == labels
    bins = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
    return float(
        sum(abs(confidence[bins == b].mean() - correct[bins == b].mean()) * (bins == b).mean() for b in np.unique(bins))
    )


def calibrated_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The lowest confidence above which answers were right at least SURE_ACCURACY of the time."""
    order = np.argsort(-scores.max(1))
    correct = (scores.argmax(1) == labels)[order]
    running = np.cumsum(correct) / np.arange(1, len(correct) + 1)
    good = np.flatnonzero(running >= SURE_ACCURACY)
    return float(scores.max(1)[order][good[-1]]) if good.size else 1.0


def tuning_views(data_root: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """New-preprocessing views of every category from the TUNING half: for calibrating the threshold only."""
    images, labels = mnist_test(data_root, TUNING)
    chosen = np.random.default_rng(1).choice(len(images), count, replace=False)
    views = [np.stack([VIEWS["new"](gray) for gray in generate(name, images[chosen])]) for name in CATEGORIES]
    return np.concatenate(views), np.tile(labels[chosen], len(CATEGORIES))


def print_confidence(models, views: dict[str, np.ndarray], rows, data_root: str, calibration: int) -> None:
    """Per run: the threshold from TUNING, the share of sure answers and their accuracy on the rows, ECE."""
    tuning, tuning_labels = tuning_views(data_root, calibration)
    mnist, mnist_labels = mnist_test(data_root, slice(None))
    digits = np.concatenate(list(views.values()))
    labels = np.concatenate([rows[row][1] for row in views])
    real = np.concatenate([np.full(len(rows[row][1]), row not in CATEGORIES) for row in views])
    print("\nconfidence, new preprocessing: threshold calibrated on the TUNING half, then on the rows above")
    for name, runs in models.items():
        for index, run in enumerate(runs):
            threshold = calibrated_threshold(probabilities(run, tuning), tuning_labels)
            scores = probabilities(run, digits)
            sure, right = scores.max(1) >= threshold, scores.argmax(1) == labels
            print(
                f"{name}[{index}] threshold {threshold:.3f}: generated sure {sure[~real].mean():.1%} "
                f"(right {right[~real & sure].mean():.2%}, not sure right {right[~real & ~sure].mean():.1%}); "
                f"real-world sure {sure[real].mean():.1%} (right {right[real & sure].mean():.2%}); "
                f"ECE MNIST test {expected_calibration_error(probabilities(run, mnist), mnist_labels):.4f}, "
                f"real-world {expected_calibration_error(scores[real], labels[real]):.4f}, "
                f"generated {expected_calibration_error(scores[~real], labels[~real]):.4f}"
            )


def main(argv: list[str]) -> None:
    args = OmegaConf.from_cli(argv)
    data_root = str(args.get("data_root", DEFAULT_DATA))
    models = {name: [load_classifier(run) for run in run_dirs(args, name, data_root)] for name in RECIPES}
    rows = labelled_rows(data_root, int(args.get("per_category", 1000)))
    counts = {row: len(labels) for row, (_, labels) in rows.items()}
    views = {
        view: {row: np.stack([prepare(gray) for gray in grays]) for row, (grays, _) in rows.items()}
        for view, prepare in VIEWS.items()
    }
    table = accuracies(models, views, rows)
    with_totals(table, counts)
    print_accuracy(table, counts)
    print_wild_minus_default(table, counts)
    images, labels = mnist_test(data_root, REPORTING)
    grays, texts = numbers(images, labels, int(args.get("numbers", 300)))
    print(f"\ncomposed 4-digit numbers read exactly ({len(texts)}, from REPORTING digits), per run")
    for name, runs in models.items():
        exact = [numbers_read(run, grays, texts) for run in runs]
        print(f"{name}: " + "  ".join(f"{share:.1%}" for share in exact) + f"  mean {np.mean(exact):.1%}")
    print_confidence(models, views["new"], rows, data_root, int(args.get("calibration", 300)))


if __name__ == "__main__":
    main(sys.argv[1:])
