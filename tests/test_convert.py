"""Images of one data set turned into what a model of another was trained on: channels, ink, scale, side."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from mnist_cnn.predict import label_row
from mnist_cnn.training.convert import conform
from mnist_cnn.training.datasets import CATALOGUE, describe
from mnist_cnn.wild.classifier import PixelClassifier, load_classifier
from mnist_cnn.wild.reading import Answer, Digit

MNIST, SVHN, USPS = CATALOGUE["mnist"], CATALOGUE["svhn"], CATALOGUE["usps"]


def box(side: int, top: int, bottom: int, channels: int = 1, ink: float = 1.0, ground: float = 0.0) -> torch.Tensor:
    """One image: a square of ink from row/column `top` to `bottom` (exclusive) on a plain ground."""
    image = torch.full((1, channels, side, side), ground)
    image[..., top:bottom, top:bottom] = ink
    return image


def ink_extent(image: torch.Tensor) -> tuple[int, int]:
    """First and last row holding ink (over half bright)."""
    rows = torch.nonzero(image[0].mean(0).amax(1) > 0.5).flatten()
    return int(rows[0]), int(rows[-1])


def test_between_the_same_data_set_nothing_changes():
    image = torch.rand(4, 1, 28, 28)
    assert conform(image, MNIST, MNIST) is image


def test_a_usps_digit_filling_its_frame_becomes_an_mnist_digit_in_a_20_pixel_box():
    converted = conform(box(16, 0, 16), USPS, MNIST)
    assert converted.shape == (1, 1, 28, 28)
    assert ink_extent(converted) == (4, 23)  # 20 rows of ink, 4 of black ground either side, as MNIST's digits
    assert converted[0, 0, 0, 0] == 0.0


def test_an_mnist_digit_is_scaled_up_to_fill_a_usps_frame():
    converted = conform(box(28, 4, 24), MNIST, USPS)
    assert converted.shape == (1, 1, 16, 16) and ink_extent(converted) == (0, 15)


def test_rgb_becomes_luma_and_any_ink_on_any_ground_becomes_white_on_black_for_a_light_ink_model():
    blue_on_white = box(32, 6, 26, channels=3, ink=0.0, ground=1.0)
    blue_on_white[:, 2, 6:26, 6:26] = 1.0  # blue ink: dark in luma (0.114)
    yellow_on_grey = box(32, 6, 26, channels=3, ink=0.9, ground=0.3)
    yellow_on_grey[:, 2] = 0.3  # yellow ink: bright in luma
    for image in (blue_on_white, yellow_on_grey):
        converted = conform(image, SVHN, MNIST)
        assert converted.shape == (1, 1, 28, 28)
        assert converted[0, 0, 0, 0] == pytest.approx(0.0, abs=1e-6)  # the ground turned black
        assert converted[0, 0, 14, 14] == pytest.approx(1.0, abs=1e-6)  # the ink turned white


def test_grayscale_is_repeated_into_rgb_for_an_svhn_model_and_polarity_is_kept():
    converted = conform(box(28, 8, 20), MNIST, SVHN)
    assert converted.shape == (1, 3, 32, 32)
    assert torch.equal(converted[:, 0], converted[:, 2]) and converted[0, 0, 0, 0] == 0.0
    first, last = ink_extent(converted)  # 12 rows of MNIST's 20-row box: 12 * 32 / 20 rows of SVHN's full frame
    assert last - first + 1 == pytest.approx(12 * 32 / 20, abs=1)


def test_a_letters_model_answers_with_letters():
    letters = describe({"name": "emnist", "split": "letters"})
    scores = np.eye(26)[10] * 0.9 + 0.1 / 26
    row = label_row(Path("k.png"), Answer([Digit(scores, list(letters.classes), np.zeros((28, 28)))]))
    assert row["label"] == "k" and row["top3"].startswith("k:0.904 ")


def test_a_classifier_takes_mnist_style_pixels_whatever_its_model_was_trained_on():
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    classifier = PixelClassifier(network, [0.4, 0.4, 0.4], [0.2, 0.2, 0.2], SVHN, list(SVHN.classes))
    probabilities = classifier(torch.rand(5, 1, 28, 28))
    assert probabilities.shape == (5, 10) and torch.allclose(probabilities.sum(1), torch.ones(5))


def test_a_run_trained_with_the_wild_augmentation_keeps_grey(trained_run, tmp_path):
    """Its blurred, faded, low-resolution training digits were grey; a run trained on MNIST's own ink keeps none."""
    run = shutil.copytree(trained_run, tmp_path / "run")
    assert load_classifier(run).keeps_grey is False
    config = OmegaConf.load(run / "config.yaml")
    config.data.augment = "wild"
    OmegaConf.save(config, run / "config.yaml")
    assert load_classifier(run).keeps_grey is True
