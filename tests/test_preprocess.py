"""Preprocessing lands any framing, size, polarity and lighting of a digit centred in 28x28 like MNIST."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps
from scipy import ndimage

from digit_images import encoded, on_uneven_paper, zero
from mnist_cnn.errors import UserError
from mnist_cnn.wild.images import read_image
from mnist_cnn.wild.preprocess import to_mnist

CASES = {
    "centred": zero(at=(70, 30)),
    "off_centre": zero(at=(135, 55)),
    "small": zero(size=(400, 300), at=(10, 10), scale=0.25, width=2),
    "inverted": ImageOps.invert(zero(at=(70, 30))),
    "bright_uneven_paper": on_uneven_paper(zero(at=(120, 20))),
}


def mnist_view(image: Image.Image) -> np.ndarray:
    return to_mnist(read_image(encoded(image)))


@pytest.mark.parametrize("case", CASES)
def test_digit_lands_centred_in_28x28_with_mnist_polarity(case):
    digit = mnist_view(CASES[case])
    assert digit.shape == (28, 28) and digit.dtype == np.float32
    assert digit.min() >= 0 and digit.max() > 0.9  # bright ink
    border = np.concatenate([digit[:3].ravel(), digit[-3:].ravel(), digit[:, :3].ravel(), digit[:, -3:].ravel()])
    assert border.max() < 0.05  # on black, like MNIST
    rows, cols = np.nonzero(digit > 0.1)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    assert 18 <= height <= 22 and 11 <= width <= 16  # the longer side scaled to about 20 px, aspect kept
    row, col = ndimage.center_of_mass(digit)
    assert abs(row - 13.5) <= 1 and abs(col - 13.5) <= 1


@pytest.mark.parametrize("case", [name for name in CASES if name != "centred"])
def test_every_variant_looks_like_the_clean_digit(case):
    """Same shape in the same place, up to a pixel (compared after a slight blur)."""
    reference, digit = (ndimage.gaussian_filter(mnist_view(CASES[name]), 1.0) for name in ("centred", case))
    assert np.corrcoef(reference.ravel(), digit.ravel())[0, 1] > 0.85


def test_blank_image_is_refused_with_a_clear_message():
    with pytest.raises(UserError, match="no digit found"):
        mnist_view(Image.new("L", (50, 50), 200))
