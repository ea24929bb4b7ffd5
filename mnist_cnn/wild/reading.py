"""What predict and the page answer for an image: a digit (or a number, digit by digit), how sure, or nothing.

A model trained on MNIST gives some digit a high probability for nearly anything, so an answer is
"sure" only above a threshold calibrated on held-out data (mnist_cnn.wild.calibration); below it the
answer is "not sure" and the three likeliest digits are shown. A blank image is "no digit found".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import nn

from mnist_cnn.errors import UserError
from mnist_cnn.training.datasets import DIGITS
from mnist_cnn.wild.classifier import probabilities
from mnist_cnn.wild.numbers import Box, split_digits
from mnist_cnn.wild.preprocess import NoDigitFound, to_mnist

# The threshold of a run never calibrated: a fallback, not a measurement. `python -m mnist_cnn.calibrate`
# stores a run's own threshold with it (mnist_cnn.wild.calibration), and predict and serve use that.
NOT_SURE_BELOW = 0.9
SURE, NOT_SURE, NO_DIGIT = "sure", "not sure", "no digit found"


@dataclass(frozen=True)
class Digit:
    """One character's class probabilities, the run's class names, the 28x28 view they came from, and where it
    was (in a number)."""

    probabilities: np.ndarray
    classes: list[str]
    view: np.ndarray
    box: Box | None = None

    @property
    def label(self) -> str:
        return self.classes[int(self.probabilities.argmax())]

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())

    def top3(self) -> list[tuple[str, float]]:
        """The three likeliest classes with their probabilities, likeliest first."""
        likeliest = np.argsort(-self.probabilities)[:3]
        return [(self.classes[index], float(self.probabilities[index])) for index in likeliest]


@dataclass(frozen=True)
class Answer:
    """What was read in one image: its digits left to right (none: no digit found)."""

    digits: list[Digit] = field(default_factory=list)
    threshold: float = NOT_SURE_BELOW

    @property
    def number(self) -> str:
        return "".join(digit.label for digit in self.digits)

    @property
    def verdict(self) -> str:
        """SURE when every digit's confidence reaches the threshold, NO_DIGIT when there is none."""
        if not self.digits:
            return NO_DIGIT
        return SURE if min(digit.confidence for digit in self.digits) >= self.threshold else NOT_SURE


def read(
    classifier: nn.Module, gray: np.ndarray, numbers: bool = False, tta: bool = False, threshold: float = NOT_SURE_BELOW
) -> Answer:
    """Read one character (or, with numbers, every digit left to right) in a grayscale image in [0, 1].

    `classifier` maps 28x28 views to probabilities, names its columns in `classes` and says in `keeps_grey`
    which contrast it was trained on (a PixelClassifier).
    """
    try:
        views, boxes = (
            split_digits(gray, lambda digits: probabilities(classifier, digits, tta), classifier.keeps_grey)
            if numbers
            else (to_mnist(gray, classifier.keeps_grey)[None], [None])
        )
    except NoDigitFound:
        return Answer(threshold=threshold)
    scores = probabilities(classifier, views, tta)
    classes = list(classifier.classes)
    return Answer(
        [Digit(score, classes, view, box) for score, view, box in zip(scores, views, boxes, strict=True)], threshold
    )


def check_digit_model(classes: list[str], what: str) -> None:
    """Refuse, in one line, what only works for a model of the ten digits (numbers: widths are per digit)."""
    if list(classes) != list(DIGITS):
        shown = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
        raise UserError(f"{what} needs a model of the ten digits 0-9: this one's classes are {shown}")
