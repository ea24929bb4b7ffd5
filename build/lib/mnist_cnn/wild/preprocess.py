"""Turn a real photo or drawing of one digit into what MNIST looks like, the way MNIST was made.

MNIST digits are light ink on black, cropped to the ink, scaled so the longer side is 20 px with
anti-aliasing, and placed in 28x28 with their centre of mass in the middle. Real images differ
in polarity, lighting, paper texture, framing, size and stroke width; each step below removes one
of those differences so a model trained on MNIST sees familiar input.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import filters, measure, morphology, transform

from mnist_cnn.errors import UserError

SIZE = 28  # MNIST's frame
BOX = 20  # MNIST's digits fit a 20x20 box
WORK_SIDE = 256  # every image is analysed at this longer side, so the parameters below fit all sizes
BACKGROUND_RADIUS = 32  # larger than any stroke's half-width at WORK_SIDE: the opening keeps only background
SPECK_FRACTION = 0.1  # ink components smaller than this share of the largest are specks
STROKE_FRACTION = 0.11  # MNIST strokes are about 11% of the digit's longer side
MIN_INK_CONTRAST = 0.05  # below this the image holds no visible digit


def at_work_size(gray: np.ndarray) -> np.ndarray:
    """Rescale (with anti-aliasing when shrinking) so the longer side is WORK_SIDE."""
    factor = WORK_SIDE / max(gray.shape)
    shape = tuple(max(1, round(side * factor)) for side in gray.shape)
    return transform.resize(gray, shape, anti_aliasing=factor < 1).astype(np.float32)


def light_ink_on_dark(gray: np.ndarray) -> np.ndarray:
    """Invert dark ink on light paper, so the ink is the bright side as in MNIST.

    The border is mostly background even in tight crops; the ink is the extreme (darkest or
    brightest) that lies further from it.
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = np.median(border)
    darkest, brightest = np.percentile(gray, [0.1, 99.9])
    return 1.0 - gray if background - darkest > brightest - background else gray


def remove_background(image: np.ndarray) -> np.ndarray:
    """Subtract the local background (uneven light, shadows, paper tint) estimated by an opening.

    A grey opening with a disk wider than any stroke erases the strokes and keeps everything
    broader, which is exactly the background to subtract.
    """
    background = morphology.opening(image, morphology.disk(BACKGROUND_RADIUS, decomposition="sequence"))
    return np.clip(image - background, 0, None)


def digit_mask(ink: np.ndarray) -> np.ndarray:
    """Pixels of the digit: above Otsu's threshold, in components that are not specks."""
    peak = float(np.percentile(ink, 99.9))
    if peak < MIN_INK_CONTRAST:
        raise UserError("no digit found in the image: it looks blank, give a photo or drawing of one digit")
    threshold = max(filters.threshold_otsu(ink), 0.25 * peak)
    components = measure.label(ink > threshold)
    areas = np.bincount(components.ravel())[1:]
    keep = np.flatnonzero(areas >= SPECK_FRACTION * areas.max()) + 1
    return np.isin(components, keep)


def crop_to(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width: ink area over the length of its skeleton."""
    return mask.sum() / max(morphology.skeletonize(mask).sum(), 1)


def normalized_ink(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The digit's ink scaled to a peak of 1, thickened to MNIST's relative stroke width."""
    digit = np.clip(ink / np.percentile(ink[mask], 90), 0, 1) * morphology.dilation(mask, morphology.disk(2))
    digit = crop_to(digit, mask)
    missing = STROKE_FRACTION * max(digit.shape) - stroke_width(crop_to(mask, mask))
    if missing >= 2:
        digit = morphology.dilation(digit, morphology.disk(int(missing // 2)))
    return digit


def fit_box(digit: np.ndarray) -> np.ndarray:
    """Scale the longer side to BOX pixels keeping the aspect ratio, with anti-aliasing."""
    factor = BOX / max(digit.shape)
    shape = tuple(max(1, round(side * factor)) for side in digit.shape)
    return transform.resize(digit, shape, anti_aliasing=factor < 1).astype(np.float32)


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place the digit in 28x28 so its centre of mass sits in the middle, as MNIST did."""
    frame = np.zeros((SIZE, SIZE), dtype=np.float32)
    top, left = (SIZE - digit.shape[0]) // 2, (SIZE - digit.shape[1]) // 2
    frame[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    row, col = ndimage.center_of_mass(frame)
    return ndimage.shift(frame, (round((SIZE - 1) / 2 - row), round((SIZE - 1) / 2 - col)), order=0, cval=0.0)


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """A grayscale image in [0, 1] of any size -> a 28x28 float32 MNIST-style digit in [0, 1]."""
    ink = remove_background(light_ink_on_dark(at_work_size(gray)))
    mask = digit_mask(ink)
    return np.clip(centre_by_mass(fit_box(normalized_ink(ink, mask))), 0, 1)
