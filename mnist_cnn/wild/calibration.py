"""The "not sure" threshold of a run, calibrated on held-out digits, and how honest its confidence is.

A network trained on MNIST gives some digit a high probability for nearly anything, so its
confidence is only a score. The threshold turns it into a promise: it is the lowest confidence
above which the run's answers were right at least SURE_ACCURACY of the time (and below which at
least about half its mistakes lie, CAUGHT_MISTAKES), measured on the hard categories
(mnist_cnn.wild.categories) made from the TUNING half of MNIST's test set and preprocessed as
predict preprocesses a photo. The REPORTING half, which the README's accuracy table is measured
on, is never used here. `python -m mnist_cnn.calibrate` stores the result with the run
(calibration.json); predict and serve read it from there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from torch import nn

from mnist_cnn.errors import UserError
from mnist_cnn.rundir import RunDir
from mnist_cnn.wild.categories import CATEGORIES, TUNING, generate, mnist_test
from mnist_cnn.wild.classifier import probabilities
from mnist_cnn.wild.preprocess import NoDigitFound, to_mnist
from mnist_cnn.wild.reading import NOT_SURE_BELOW

SURE_ACCURACY = 0.99  # a "sure" answer is right at least this often on the tuning images
CAUGHT_MISTAKES = 0.5  # and at least about this share of the wrong answers on them is "not sure"
ECE_BINS = 15
PER_CATEGORY = 300  # tuning images per category: 2,700 in all, about 3 minutes of preprocessing on one core
Mapper = Callable[[Callable[[np.ndarray], np.ndarray | None], Iterable[np.ndarray]], Iterator[np.ndarray | None]]


def expected_calibration_error(scores: np.ndarray, labels: np.ndarray) -> float:
    """ECE: the gap between confidence and accuracy, averaged over ECE_BINS equal-width confidence bins."""
    confidence, correct = scores.max(1), scores.argmax(1) == labels
    bins = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
    return float(
        sum(abs(confidence[bins == b].mean() - correct[bins == b].mean()) * (bins == b).mean() for b in np.unique(bins))
    )


def calibrated_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The lowest confidence above which answers were right at least SURE_ACCURACY of the time (1.0: none),
    raised where needed so that CAUGHT_MISTAKES of the wrong answers lie below it.

    A run right more often than SURE_ACCURACY on the tuning images would otherwise be sure of every
    answer, its mistakes included, and of any scribble: "not sure" would never be said.
    """
    order = np.argsort(-scores.max(1))
    confidence, correct = scores.max(1)[order], (scores.argmax(1) == labels)[order]
    running = np.cumsum(correct) / np.arange(1, len(correct) + 1)
    good = np.flatnonzero(running >= SURE_ACCURACY)
    if not good.size:
        return 1.0
    wrong, lowest = confidence[~correct], float(confidence[good[-1]])
    return max(lowest, float(np.quantile(wrong, CAUGHT_MISTAKES))) if wrong.size else lowest


def preprocessed(gray: np.ndarray, keep_grey: bool = False) -> np.ndarray | None:
    """predict's 28x28 view of an image; None where predict would answer "no digit found"."""
    try:
        return to_mnist(gray, keep_grey)
    except NoDigitFound:
        return None


def category_views(
    digits: np.ndarray, labels: np.ndarray, keep_grey: bool = False, mapper: Mapper = map
) -> tuple[np.ndarray, np.ndarray]:
    """Every category made from the given MNIST digits and preprocessed as predict would for a model that keeps
    grey ink or not (PixelClassifier.keeps_grey), with the labels.

    Images predict would call blank are left out: they get no confidence to calibrate. `mapper`
    applies the preprocessing (a process pool's map spreads it over cores).
    """
    grays = [gray for name in CATEGORIES for gray in generate(name, digits)]
    views = list(mapper(functools.partial(preprocessed, keep_grey=keep_grey), grays))
    kept = [index for index, view in enumerate(views) if view is not None]
    return np.stack([views[index] for index in kept]), np.tile(labels, len(CATEGORIES))[kept]


def tuning_views(
    data_root: str | Path, per_category: int, keep_grey: bool = False, mapper: Mapper = map
) -> tuple[np.ndarray, np.ndarray]:
    """category_views of `per_category` digits drawn from the TUNING half of MNIST's test set."""
    images, labels = mnist_test(data_root, TUNING)
    chosen = np.random.default_rng(1).choice(len(images), min(per_category, len(images)), replace=False)
    return category_views(images[chosen], labels[chosen], keep_grey, mapper)


def calibrate(classifier: nn.Module, views: np.ndarray, labels: np.ndarray) -> dict[str, float | int | None]:
    """What calibration.json records: the threshold, and how the tuning images fared against it
    (`caught_mistakes` is None for a run that made no mistakes: there was nothing to catch)."""
    scores = probabilities(classifier, views)
    threshold = calibrated_threshold(scores, labels)
    sure, wrong = scores.max(1) >= threshold, scores.argmax(1) != labels
    return {
        "not_sure_below": threshold,
        "sure_accuracy": SURE_ACCURACY,
        "tuning_images": len(labels),
        "sure_share": float(sure.mean()),
        "caught_mistakes": float((wrong & ~sure).sum() / wrong.sum()) if wrong.any() else None,
        "ece": expected_calibration_error(scores, labels),
    }


def run_threshold(model_dir: Path) -> float:
    """The run's calibrated threshold, or NOT_SURE_BELOW for a run never calibrated; a damaged file is one line."""
    run = RunDir(model_dir)
    try:
        calibration = run.read_calibration()
        threshold = NOT_SURE_BELOW if calibration is None else calibration["not_sure_below"]
    except (ValueError, KeyError, TypeError):  # not JSON, or not an object holding the key
        threshold = None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise UserError(
            f"{run.calibration_file} holds no threshold from 0 to 1: run python -m mnist_cnn.calibrate "
            f"model={model_dir} again"
        )
    return float(threshold)
