"""What predict and the page answer for an image: a digit (or a number, digit by digit), how sure, or nothing.

A model trained on MNIST gives some digit a high probability for nearly anything, so an answer is
"sure" only above a threshold calibrated on held-out data (benchmarks/real_world.py); below it the
answer is "not sure" and the three likeliest digits are shown. A blank image is "no digit found".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import nn

from mnist_cnn.wild.classifier import probabilities
from mnist_cnn.wild.numbers import Box, split_digits
from mnist_cnn.wild.preprocess import NoDigitFound, to_mnist

# Calibrated by `python -m benchmarks.real_world` on the tuning half of its MNIST-test categories:
# the lowest threshold whose sure answers were right at least 99% of the time.
NOT_SURE_BELOW = 0.9
SURE, NOT_SURE, NO_DIGIT = "sure", "not sure", "no digit found"


@dataclass(frozen=True)
class Digit:
    """One digit's ten probabilities, the 28x28 view they came from, and where it was (in a number)."""

    probabilities: np.ndarray
    view: np.ndarray
    box: Box | None = None

    @property
    def digit(self) -> int:
        return int(self.probabilities.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())

    def top3(self) -> list[tuple[int, float]]:
        """The three likeliest digits with their probabilities, likeliest first."""
        return [(int(digit), float(self.probabilities[digit])) for digit in np.argsort(-self.probabilities)[:3]]


@dataclass(frozen=True)
class Answer:
    """What was read in one image: its digits left to right (none: no digit found)."""

    digits: list[Digit] = field(default_factory=list)
    threshold: float = NOT_SURE_BELOW

    @property
    def number(self) -> str:
        return "".join(str(digit.digit) for digit in self.digits)

    @property
    def verdict(self) -> str:
        """SURE when every digit's confidence reaches the threshold, NO_DIGIT when there is none."""
        if not self.digits:
            return NO_DIGIT
        return SURE if min(digit.confidence for digit in self.digits) >= self.threshold else NOT_SURE


def read(
    classifier: nn.Module, gray: np.ndarray, numbers: bool = False, tta: bool = False, threshold: float = NOT_SURE_BELOW
) -> Answer:
    """Read one digit (or, with numbers, every digit left to right) in a grayscale image in [0, 1]."""
    try:
        views, boxes = (
            split_digits(gray, lambda digits: probabilities(classifier, digits, tta))
            if numbers
            else (to_mnist(gray)[None], [None])
        )
    except NoDigitFound:
        return Answer(threshold=threshold)
    scores = probabilities(classifier, views, tta)
    return Answer([Digit(*parts) for parts in zip(scores, views, boxes, strict=True)], threshold)
