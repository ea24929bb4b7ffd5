"""Hard kinds of real handwriting, made from MNIST's test digits: what the wild benchmark reports.

Every category turns one 28x28 MNIST test digit into an image as a person would bring it: a crop
of a photo or scan around the digit (with a loose, random margin), or a small digit on a large
canvas. Only the official test set (t10k) is used, never the training images, and it is split in
two: the first half (TUNING) is the only data preprocessing and thresholds may be tuned on, the
second half (REPORTING) is what the README reports.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from skimage import morphology, transform

from mnist_cnn.errors import UserError
from mnist_cnn.training.datasets import CATALOGUE, check_files
from mnist_cnn.training.readers import read_part

TUNING = slice(0, 5000)
REPORTING = slice(5000, 10000)
UPSCALE = 4  # the generated images are drawn at 4x MNIST's resolution (112 px for a 28 px frame)

Category = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def mnist_digits(root: str | Path, split: str, part: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """A slice of one of MNIST's official splits: float images in [0, 1] (N, 28, 28) and labels. The categories
    read only the test split; the judge learns from numbers of training digits (mnist_cnn.wild.judge_training)."""
    spec = CATALOGUE["mnist"]
    for path in spec.paths(root, split):
        if not path.is_file():
            raise UserError(f"data.root={root}: {path} is missing: point data.root at the folder holding MNIST/raw")
    check_files(spec, root, download=True, splits=(split,))
    images, labels = read_part(spec, root, split)
    return images[part, 0].astype(np.float32) / 255, labels[part]


def mnist_test(root: str | Path, part: slice) -> tuple[np.ndarray, np.ndarray]:
    """A slice of MNIST's official test set, the only digits the categories are made from."""
    return mnist_digits(root, "test", part)


def upscaled(digit: np.ndarray, factor: int = UPSCALE) -> np.ndarray:
    """MNIST's anti-aliased digit at a photo's resolution (bilinear, as a camera would blur it)."""
    return transform.rescale(digit, factor, order=1).astype(np.float32)


def crop_loosely(image: np.ndarray, rng: np.random.Generator, margin: tuple[float, float] = (0.05, 0.3)) -> np.ndarray:
    """Crop to the ink with a random margin on each side, as a share of the digit's longer side."""
    rows, cols = np.nonzero(image > 0.1 * image.max())
    side = max(np.ptp(rows), np.ptp(cols)) + 1
    top, bottom, left, right = (int(rng.uniform(*margin) * side) for _ in range(4))
    padded = np.pad(image, side)
    return padded[
        rows.min() + side - top : rows.max() + side + 1 + bottom,
        cols.min() + side - left : cols.max() + side + 1 + right,
    ]


def clean(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The MNIST digit itself, loosely cropped at 4x: preprocessing must not hurt the easy case."""
    return crop_loosely(upscaled(digit), rng)


def squared(crop: np.ndarray) -> np.ndarray:
    """The crop centred in a square of its longer side, so resizing it keeps the digit's shape."""
    extra = max(crop.shape) - np.array(crop.shape)
    return np.pad(crop, [(pad // 2, pad - pad // 2) for pad in extra])


def enlarged_from(side: int) -> Category:
    """A digit that was `side` pixels square (a tight crop from a photo or a scan, like scikit-learn's 8x8
    digits, whose digit fills the square's height), enlarged 8x bilinearly."""

    def enlarged(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        small = transform.resize(squared(crop_loosely(digit, rng, margin=(0.0, 0.1))), (side, side), anti_aliasing=True)
        return transform.resize(small, (8 * side, 8 * side), order=1).astype(np.float32)

    return enlarged


def blurred(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Out of focus: a Gaussian blur of 1-2 MNIST pixels."""
    return crop_loosely(ndimage.gaussian_filter(upscaled(digit), rng.uniform(1.0, 2.0) * UPSCALE), rng)


def eroded(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A fine pen: strokes thinned to about a third of MNIST's width."""
    return crop_loosely(ndimage.grey_erosion(upscaled(digit), footprint=morphology.disk(3)), rng)


def dilated(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A thick marker: strokes about twice MNIST's width."""
    return crop_loosely(ndimage.grey_dilation(upscaled(digit), footprint=morphology.disk(5)), rng)


def low_contrast_noisy(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Faint pencil on grey paper (dark on light) in a grainy photo: ink 10-25% darker, noise sigma 3-6%."""
    paper = rng.uniform(0.45, 0.75)
    photo = paper - rng.uniform(0.1, 0.25) * crop_loosely(upscaled(digit), rng)
    return np.clip(photo + rng.normal(0, rng.uniform(0.03, 0.06), photo.shape), 0, 1).astype(np.float32)


def rotated(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A digit written at an angle: rotated 15-35 degrees either way."""
    angle = rng.uniform(15, 35) * rng.choice([-1, 1])
    return crop_loosely(ndimage.rotate(upscaled(digit), angle, reshape=True, order=1), rng)


def off_centre(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small digit somewhere on a large, slightly uneven canvas (a whole photo, not a crop)."""
    ink = upscaled(digit)
    canvas = np.linspace(0.0, 0.15, 480)[None, :] * np.ones((360, 1)) + rng.normal(0, 0.01, (360, 480))
    top, left = int(rng.integers(0, 360 - ink.shape[0])), int(rng.integers(0, 480 - ink.shape[1]))
    canvas[top : top + ink.shape[0], left : left + ink.shape[1]] += ink
    return np.clip(canvas, 0, 1).astype(np.float32)


CATEGORIES: dict[str, Category] = {
    "mnist-clean": clean,
    "enlarged-8x8": enlarged_from(8),
    "enlarged-12x12": enlarged_from(12),
    "blurred": blurred,
    "eroded": eroded,
    "dilated": dilated,
    "low-contrast-noise": low_contrast_noisy,
    "rotated-15-35": rotated,
    "off-centre-canvas": off_centre,
}


def generate(category: str, digits: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """One image of the category per digit, reproducibly (the seed and the category name fix the randomness)."""
    rng = np.random.default_rng([seed, *category.encode()])
    return [CATEGORIES[category](digit, rng) for digit in digits]


def ink_columns(digit: np.ndarray) -> np.ndarray:
    """The digit's columns that hold ink, whole rows kept (so digits share a baseline band)."""
    cols = np.flatnonzero(digit.max(0) > 0.1)
    return digit[:, cols[0] : cols[-1] + 1]


def number_layers(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MNIST digits written left to right as one number, each on its own layer (k, height, width) at 28x28 scale.

    Each digit is scaled by 0.8-1.2 and moved up or down by up to 3 px; the gap to the previous
    one is -2 to 8 px (negative: their boxes overlap, and strokes may touch), but never more overlap
    than a quarter of the narrower digit's width, or a 1 would vanish into its neighbour. Kept apart,
    the layers say which digit each pixel of the number belongs to (mnist_cnn.wild.judge_training).
    """
    pieces = [transform.rescale(ink_columns(digit), rng.uniform(0.8, 1.2), order=1) for digit in digits]
    height = max(piece.shape[0] for piece in pieces) + 8
    layers = np.zeros((len(pieces), height, sum(piece.shape[1] for piece in pieces) + 6 * len(pieces) + 8), np.float32)
    left = 4
    for layer, piece, following in zip(layers, pieces, [*pieces[1:], pieces[-1]], strict=True):
        top = (height - piece.shape[0]) // 2 + int(rng.integers(-3, 4))
        layer[top : top + piece.shape[0], left : left + piece.shape[1]] = piece
        deepest = min(piece.shape[1], following.shape[1]) // 4
        left += piece.shape[1] + max(int(rng.integers(-2, 9)), -deepest)
    return layers[:, :, : left + 4]


def drawn(layers: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A number's layers drawn at 3x as one image, as dark ink on light paper half the time."""
    number = upscaled(layers.max(0), 3)
    return 1 - number if rng.random() < 0.5 else number


def compose_number(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MNIST digits written as one number (`number_layers`) and drawn (`drawn`)."""
    return drawn(number_layers(digits, rng), rng)


def numbers(images: np.ndarray, labels: np.ndarray, count: int, length: int = 4, seed: int = 0):
    """`count` composed numbers of `length` digits drawn from the given digits, with their labels as strings."""
    rng = np.random.default_rng([seed, length])
    chosen = rng.integers(0, len(images), (count, length))
    return [compose_number(images[row], rng) for row in chosen], ["".join(map(str, labels[row])) for row in chosen]


NOT_DIGITS = "ACEFHKMNPRTUVWXY"  # capitals no reader would take for a digit (not O, I, L, S, B, G, Z, D, Q, J)


def blank_page() -> Image.Image:
    """A light 112-px page, a 28-px frame at the generated images' resolution, to draw a non-digit on."""
    return Image.new("L", (28 * UPSCALE, 28 * UPSCALE), 255)


def scribble(rng: np.random.Generator) -> np.ndarray:
    """Ink that is no digit: one stroke through 5-9 random points on a 112-px page, dark on light."""
    page = blank_page()
    points = [tuple(point) for point in rng.uniform(16, 28 * UPSCALE - 16, size=(int(rng.integers(5, 10)), 2))]
    ImageDraw.Draw(page).line(points, fill=0, width=int(rng.integers(6, 12)), joint="curve")
    return np.asarray(page, np.float32) / 255


def printed_letter(rng: np.random.Generator) -> np.ndarray:
    """A capital letter of NOT_DIGITS in Pillow's own font, dark on light: a character, but not a digit."""
    page = blank_page()
    font = ImageFont.load_default(size=int(rng.integers(60, 90)))
    letter = NOT_DIGITS[int(rng.integers(len(NOT_DIGITS)))]
    ImageDraw.Draw(page).text((56, 56), letter, fill=0, font=font, anchor="mm")
    return np.asarray(page, np.float32) / 255


NON_DIGITS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "scribble": scribble,
    "printed letter": printed_letter,
}


def non_digits(kind: str, count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` images of one kind of NON_DIGITS, reproducibly: what a reader should not be sure of."""
    rng = np.random.default_rng([seed, *kind.encode()])
    return [NON_DIGITS[kind](rng) for _ in range(count)]
