"""Answers: sure, not sure below the calibrated threshold, no digit found; test-time augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from torch import nn

from digit_images import zero
from mnist_cnn.wild.classifier import TTA_ANGLES, TTA_SHIFTS, probabilities, tta_views
from mnist_cnn.wild.reading import NO_DIGIT, NOT_SURE, NOT_SURE_BELOW, SURE, read


class Fixed(nn.Module):
    """A stand-in model: the same ten probabilities for every image."""

    classes = list("0123456789")

    def __init__(self, scores: list[float], keeps_grey: bool = False):
        super().__init__()
        self.scores, self.keeps_grey = torch.tensor(scores), keeps_grey

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.scores.expand(len(pixels), 10)


class LeftHeavy(nn.Module):
    """A stand-in model whose answer depends on where the ink is: 1 for ink on the left half, else 0."""

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        left = pixels[..., :14].sum(dim=(1, 2, 3)) / pixels.sum(dim=(1, 2, 3)).clamp(min=1e-6)
        return torch.stack([1 - left, left, *[torch.zeros_like(left)] * 8], 1)


def scores(top: float) -> list[float]:
    """Ten probabilities: 7 gets `top`, the rest shared by 1 and 2."""
    rest = (1 - top) / 2
    return [0, rest, rest, 0, 0, 0, 0, top, 0, 0]


def photo() -> np.ndarray:
    return np.asarray(zero(at=(70, 30)), dtype=np.float32) / 255


@pytest.mark.parametrize(
    ("top", "verdict"),
    [(0.99, SURE), (NOT_SURE_BELOW + 0.001, SURE), (NOT_SURE_BELOW - 0.001, NOT_SURE), (0.6, NOT_SURE)],
)
def test_the_verdict_follows_the_calibrated_threshold(top, verdict):
    answer = read(Fixed(scores(top)), photo())
    assert answer.verdict == verdict and answer.number == "7"
    (digit,) = answer.digits
    assert digit.top3()[0] == ("7", pytest.approx(top)) and [label for label, _ in digit.top3()] == ["7", "1", "2"]
    assert digit.view.shape == (28, 28) and digit.box is None


def test_a_lower_threshold_makes_the_same_answer_sure():
    assert read(Fixed(scores(0.6)), photo(), threshold=0.5).verdict == SURE


def test_blank_images_are_no_digit_found_not_an_error():
    for blank in (np.ones((60, 80), np.float32), np.zeros((30, 30), np.float32)):
        answer = read(Fixed(scores(0.99)), blank)
        assert answer.verdict == NO_DIGIT and answer.digits == [] and answer.number == ""


def test_tta_views_are_the_digit_itself_then_shifted_and_turned():
    digit = torch.from_numpy(read(Fixed(scores(0.99)), photo()).digits[0].view)[None, None]
    views = tta_views(digit)
    assert views.shape == (len(TTA_SHIFTS) + len(TTA_ANGLES), 1, 1, 28, 28)
    assert torch.equal(views[0], digit)
    assert all(not torch.equal(view, digit) for view in views[1:])
    assert torch.allclose(views.sum(dim=(1, 2, 3, 4)), digit.sum(), rtol=0.02)  # nothing pushed out of the frame


def test_tta_averages_the_models_answers_over_the_views():
    """A stroke just left of the middle: shifted right, the position-bound model changes its mind."""
    digit = np.zeros((1, 28, 28), np.float32)
    digit[0, 8:20, 12:14] = 1
    plain, averaged = probabilities(LeftHeavy(), digit), probabilities(LeftHeavy(), digit, tta=True)
    assert averaged.sum() == pytest.approx(1)
    assert not np.allclose(plain, averaged)
    assert probabilities(Fixed(scores(0.9)), digit, tta=True) == pytest.approx(np.array([scores(0.9)]))


def test_a_number_is_not_sure_when_any_digit_is():
    canvas = Image.new("L", (320, 150), 0)
    canvas.paste(zero(), (0, 0))
    canvas.paste(zero(), (120, 0))
    gray = np.asarray(canvas, dtype=np.float32) / 255
    assert read(Fixed(scores(0.95)), gray, numbers=True).number == "77"
    assert read(Fixed(scores(0.95)), gray, numbers=True, threshold=0.96).verdict == NOT_SURE


def blurred_zeros(count: int) -> np.ndarray:
    canvas = Image.new("L", (120 * count + 80, 150), 0)
    for index in range(count):
        canvas.paste(zero(), (120 * index, 0))
    return np.asarray(canvas.filter(ImageFilter.GaussianBlur(6)), dtype=np.float32) / 255


def saturated_share(views: np.ndarray) -> float:
    """The share of ink pixels near full brightness: at least 40% in MNIST's contrast (its 60th percentile is 1)."""
    ink = views[views > 0.1]
    return float((ink > 0.9).mean())


@pytest.mark.parametrize("numbers", [False, True])
def test_a_model_trained_on_grey_ink_sees_the_blur_kept_grey(numbers):
    """For one digit and for each digit of a number, the views read are in the model's own contrast."""
    gray = blurred_zeros(2 if numbers else 1)
    views = {
        keeps_grey: np.stack([digit.view for digit in read(Fixed(scores(0.99), keeps_grey), gray, numbers).digits])
        for keeps_grey in (False, True)
    }
    assert len(views[False]) == len(views[True]) == (2 if numbers else 1)
    assert saturated_share(views[False]) >= 0.4 > 0.3 > saturated_share(views[True])
    assert all(view.max() == pytest.approx(1) for view in views[True])
