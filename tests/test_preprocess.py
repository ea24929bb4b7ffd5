"""Preprocessing lands any framing, size, polarity and lighting of a digit centred in 28x28 like MNIST."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from scipy import ndimage
from skimage import measure

from digit_images import encoded, on_uneven_paper, written, zero
from mnist_cnn.wild.images import read_image
from mnist_cnn.wild.preprocess import MNIST_SLANT, NoDigitFound, deskewed, light_ink_on_dark, slant, to_mnist

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
    """Same shape in the same place, up to a pixel."""
    assert correlation(mnist_view(CASES["centred"]), mnist_view(CASES[case])) > 0.85


def test_blank_image_is_no_digit_found():
    with pytest.raises(NoDigitFound, match="no digit found"):
        mnist_view(Image.new("L", (50, 50), 200))


def as_gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255


def correlation(first: np.ndarray, second: np.ndarray) -> float:
    """How alike two 28x28 views are, after a slight blur (a pixel's shift is not a difference)."""
    first, second = (ndimage.gaussian_filter(view, 1.0) for view in (first, second))
    return float(np.corrcoef(first.ravel(), second.ravel())[0, 1])


def enlarged(image: Image.Image, side: int) -> Image.Image:
    """A crop seen at `side` pixels, then enlarged 8x bilinearly: a small digit in a photo."""
    return image.resize((side, side), Image.Resampling.BOX).resize((8 * side, 8 * side), Image.Resampling.BILINEAR)


HARD_CASES = {
    "enlarged_from_10px": enlarged(zero(size=(90, 120), at=(15, 15)), 10),
    "blurred": zero(at=(70, 30)).filter(ImageFilter.GaussianBlur(6)),
    "low_contrast_noisy_paper": Image.fromarray(
        np.clip(
            170
            - 0.12 * np.asarray(zero(at=(70, 30)), dtype=np.float32)
            + np.random.default_rng(0).normal(0, 12, (150, 200)),
            0,
            255,
        ).astype(np.uint8)
    ),
}


@pytest.mark.parametrize("case", HARD_CASES)
def test_hard_images_keep_the_whole_digit(case):
    """Blur, low resolution, faint ink on grainy paper: one closed ring (one piece, one hole) shaped like the zero."""
    view = mnist_view(HARD_CASES[case])
    assert measure.label(view > 0.5).max() == 1 and measure.euler_number(view > 0.5) == 0
    assert correlation(mnist_view(CASES["centred"]), view) > 0.7


HOLES = {"2": 0, "4": 1, "5": 0, "6": 1, "7": 0, "9": 1}


@pytest.mark.parametrize("digit", HOLES)
def test_a_tight_low_resolution_crop_keeps_every_stroke_and_loop(digit):
    """A digit cropped tightly at 8 px and enlarged: the strokes along the crop's edge (a 7's bar, a 2's base)
    stay joined to the rest, and the grey that fills a small loop is not taken for paper around it: one piece
    with the digit's own holes."""
    drawn = written(digit, pen=14, slant=0.0)
    ink = mnist_view(enlarged(drawn.crop(drawn.getbbox()), 8)) > 0.5
    assert measure.label(ink).max() == 1 and measure.euler_number(ink) == 1 - HOLES[digit]


FILLING = {"0": (14, 6), "3": (24, 6), "5": (18, 8), "8": (14, 6)}  # digit: pen width, crop side in px


@pytest.mark.parametrize("digit", FILLING)
def test_a_blurred_digit_filling_its_crop_is_told_from_its_paper_either_way_round(digit):
    """Its border is half blurred ink, its median midway between ink and paper: the corners tell them apart."""
    pen, side = FILLING[digit]
    drawn = written(digit, pen=pen, slant=0.0)
    light = np.asarray(enlarged(drawn.crop(drawn.getbbox()), side), dtype=np.float32) / 255
    assert np.array_equal(light_ink_on_dark(light), light)
    assert np.allclose(light_ink_on_dark(1 - light), light)


def test_dark_corners_of_a_photo_do_not_turn_its_ink_light():
    """Vignetting darkens a photo's corners towards its dark ink; the paper along the border still decides."""
    paper = np.asarray(ImageOps.invert(zero(at=(70, 30))), dtype=np.float32) / 255
    rows, cols = np.indices(paper.shape) / (np.array(paper.shape)[:, None, None] / 2) - 1
    photo = paper * (1 - 0.9 * np.clip(np.hypot(rows, cols) - 0.5, 0, None) ** 2 / (np.sqrt(2) - 0.5) ** 2)
    assert np.allclose(light_ink_on_dark(photo), 1 - photo)


def test_a_thick_marker_reads_the_same_at_any_resolution():
    """Strokes far wider than the background estimate's fixed size used to be taken for background."""
    marker = zero(size=(100, 130), at=(20, 20), width=26)
    assert correlation(mnist_view(marker), mnist_view(enlarged(marker, 12))) > 0.85


def test_a_stroke_split_by_a_gap_is_kept_and_a_far_speck_dropped():
    image = zero(at=(70, 30))
    draw = ImageDraw.Draw(image)
    draw.rectangle((95, 115, 108, 125), fill=0)  # the bottom of the ring cut through
    draw.ellipse((180, 130, 186, 136), fill=255)  # a speck in the corner
    view = mnist_view(image)
    assert correlation(mnist_view(CASES["centred"]), view) > 0.85
    rows, cols = np.nonzero(view > 0.1)
    assert np.ptp(rows) + 1 >= 18  # both halves kept: the digit still fills the 20 px box's height


@pytest.mark.parametrize("shear", [-0.9, 0.9])
def test_a_digit_slanted_beyond_mnist_is_straightened_to_mnists_range(shear):
    leaning = zero(at=(70, 30)).transform((200, 150), Image.Transform.AFFINE, (1, shear, -60 * shear, 0, 1, 0))
    assert not MNIST_SLANT[0] <= slant(as_gray(leaning))[0] <= MNIST_SLANT[1]
    assert MNIST_SLANT[0] - 0.05 <= slant(mnist_view(leaning))[0] <= MNIST_SLANT[1] + 0.05


def test_a_slant_mnist_itself_has_is_left_alone():
    upright = mnist_view(CASES["centred"])
    assert deskewed(upright) is upright


def test_blank_paper_photographed_in_uneven_light_is_no_digit():
    with pytest.raises(NoDigitFound):
        to_mnist(as_gray(on_uneven_paper(Image.new("L", (200, 150), 0))))
