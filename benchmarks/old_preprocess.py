"""The preprocessing `predict` used before issue 16, kept only so benchmarks/real_world.py can compare against it.

It analysed every image at a 256 px longer side with fixed sizes: a background opening of radius
32 px (wider strokes were taken for background), Otsu's threshold, and every component under a
tenth of the largest dropped as a speck, so blurred or low-resolution strokes that the threshold
split lost their pieces. The steps it shares with today's code are imported, not copied.
"""

from __future__ import annotations

import numpy as np
from skimage import filters, measure, morphology

from mnist_cnn.wild.preprocess import (
    BOX,
    MIN_INK_CONTRAST,
    STROKE_FRACTION,
    WORK_SIDE,
    NoDigitFound,
    border,
    bounds,
    centre_by_mass,
    lean,
    resized,
    stroke_width,
)

BACKGROUND_RADIUS = 32
SPECK_FRACTION = 0.1


def light_ink_on_dark(gray: np.ndarray) -> np.ndarray:
    """The border's median alone decided which extreme is ink (today's asks the corners where it is midway)."""
    darkest, brightest = np.percentile(gray, [0.1, 99.9])
    return 1.0 - gray if lean(np.median(border(gray)), darkest, brightest) > 0 else gray


def remove_background(image: np.ndarray) -> np.ndarray:
    background = morphology.opening(image, morphology.disk(BACKGROUND_RADIUS, decomposition="sequence"))
    return np.clip(image - background, 0, None)


def digit_mask(ink: np.ndarray) -> np.ndarray:
    peak = float(np.percentile(ink, 99.9))
    if peak < MIN_INK_CONTRAST:
        raise NoDigitFound
    components = measure.label(ink > max(filters.threshold_otsu(ink), 0.25 * peak))
    areas = np.bincount(components.ravel())[1:]
    return np.isin(components, np.flatnonzero(areas >= SPECK_FRACTION * areas.max()) + 1)


def normalized_ink(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    digit = np.clip(ink / np.percentile(ink[mask], 90), 0, 1) * morphology.dilation(mask, morphology.disk(2))
    digit = digit[bounds(mask)]
    missing = STROKE_FRACTION * max(digit.shape) - stroke_width(mask[bounds(mask)])
    if missing >= 2:
        digit = morphology.dilation(digit, morphology.disk(int(missing // 2)))
    return digit


def to_mnist(gray: np.ndarray) -> np.ndarray:
    ink = remove_background(light_ink_on_dark(resized(gray, WORK_SIDE)))
    return np.clip(centre_by_mass(resized(normalized_ink(ink, digit_mask(ink)), BOX)), 0, 1)
