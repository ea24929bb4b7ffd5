"""Turn a real photo or drawing of one digit into what MNIST looks like, the way MNIST was made.

MNIST digits are light ink on black, cropped to the ink, scaled so the longer side is 20 px with
anti-aliasing, and placed in 28x28 with their centre of mass in the middle. Real images differ
in polarity, lighting, paper texture, framing, size, stroke width, focus and noise; each step
below removes one of those differences so a model trained on MNIST sees familiar input. Every
size a step uses is measured on the image itself (the strokes' width, the noise, the digit's
extent), so a blurry 8x8 crop enlarged to 80 px and a sharp 4000 px photo are read alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import filters, measure, morphology, transform

from mnist_cnn.errors import UserError

SIZE = 28  # MNIST's frame
BOX = 20  # MNIST's digits fit a 20x20 box
WORK_SIDE = 256  # every image is analysed at this longer side, so the parameters below fit all sizes
BACKGROUND_SIDE = 64  # the background is smooth: estimated at this coarser side, 16x fewer pixels
BACKGROUND_RADIUS = 32  # at WORK_SIDE; the opening that estimates the background is at least this wide
MIN_INK_CONTRAST = 0.05  # below this the image holds no visible digit
BLANK_SMOOTHING = 2  # px: the contrast is measured after a blur this wide, so the paper's grain does not count
PAPER_PERCENTILE = 25  # at least this share of any image's pixels is paper
UNEVEN = 0.02  # paper lit unevenly by this share of the ink's contrast needs its local background removed
NOISE_SIGMAS = 4  # the paper's noise reaches about this many deviations
NOISY = 0.1  # an image whose noise reaches this share of the ink's contrast is smoothed first
JOIN_WIDTHS = 3  # parts of a digit closer than this many stroke widths belong together
STROKE_FRACTION = 0.11  # MNIST strokes are about 11% of the digit's longer side
INK_PIXEL = 0.1  # a 28x28 pixel above this is ink
SATURATED_FROM = 60  # the percentile of the ink's pixels scaled to 1 (MNIST's median ink pixel is 0.9)
MIDWAY = 1 / 3  # a border whose median lies in the middle third between the darkest and brightest ink says little
CORNER_SHARE = 1 / 8  # the corner squares that decide then are this share of the shorter side
MNIST_SLANT = (-0.58, 0.34)  # 5th and 95th percentile of MNIST's training digits' shear (mu11 / mu02)


class NoDigitFound(UserError):
    """The image holds no ink that stands out from the paper: an answer, not a broken file."""

    def __init__(self) -> None:
        super().__init__("no digit found in the image: it looks blank")


@dataclass
class Ink:
    """The light-on-dark ink of an image at a working size, and what was measured on it."""

    ink: np.ndarray  # background subtracted, >= 0
    scale: float  # working pixels per pixel of the original image
    mask: np.ndarray  # pixels that are surely ink (hysteresis between low and high)
    low: float  # the paper's level plus noise: ink below it is paper
    high: float  # clearly ink: Otsu's threshold, at least a quarter of the brightest ink
    width: float  # mean stroke width in pixels


def resized(image: np.ndarray, side: int) -> np.ndarray:
    """Rescale so the longer side is `side` (anti-aliased when shrinking)."""
    factor = side / max(image.shape)
    shape = tuple(max(1, round(length * factor)) for length in image.shape)
    return transform.resize(image, shape, anti_aliasing=factor < 1).astype(np.float32)


def light_ink_on_dark(gray: np.ndarray) -> np.ndarray:
    """Invert dark ink on light paper, so the ink is the bright side as in MNIST.

    The ink is the extreme (darkest or brightest) that lies further from the background, and the
    border is mostly background even in tight crops. Not in all: a blurred digit filling its crop
    (a small crop enlarged) leaves the border half ink, its median midway between the extremes.
    There the corners decide, where a digit's strokes seldom reach, if they are not midway too.
    """
    darkest, brightest = np.percentile(gray, [0.1, 99.9])
    leans = [lean(np.median(part), darkest, brightest) for part in (border(gray), corners(gray))]
    decisive = leans[1] if abs(leans[0]) < MIDWAY <= abs(leans[1]) else leans[0]
    return 1.0 - gray if decisive > 0 else gray


def lean(background: float, darkest: float, brightest: float) -> float:
    """From -1 (the background is the darkest: light ink) to 1 (the brightest: dark ink); 0 says nothing."""
    return float((background - darkest) - (brightest - background)) / max(float(brightest - darkest), 1e-6)


def border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def corners(image: np.ndarray) -> np.ndarray:
    """The four squares of CORNER_SHARE of the shorter side in the image's corners."""
    side = max(1, round(CORNER_SHARE * min(image.shape)))
    return np.concatenate(
        [image[rows, cols].ravel() for rows in (np.s_[:side], np.s_[-side:]) for cols in (np.s_[:side], np.s_[-side:])]
    )


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width: ink area over the length of its skeleton."""
    return float(mask.sum() / max(morphology.skeletonize(mask).sum(), 1))


def rough_width(image: np.ndarray) -> float:
    """The strokes' width before the background is known: Otsu's ink of the smoothed image."""
    smooth = filters.gaussian(image, 2)
    if np.ptp(smooth) < MIN_INK_CONTRAST:
        return 0.0
    return stroke_width(smooth > filters.threshold_otsu(smooth))


def remove_background(image: np.ndarray) -> np.ndarray:
    """Subtract the paper: its light gradient always, its local unevenness only where there is some.

    Light falling across the page is taken out first as a plane. Shadows and tint are found by an
    opening (opened_background), but an opening also takes what is broad inside the digit for
    background: the grey that fills the loops of a blurred or enlarged low-resolution digit. So
    its estimate is used only when it finds light on the paper away from the digit, where there
    is nothing but paper; on even paper, the paper's typical level alone is subtracted.
    """
    image = image - lighting_plane(image)
    flat = above_paper(image)
    opened = above_paper(image - opened_background(image))
    return opened if is_uneven(flat - opened, opened) else flat


def above_paper(image: np.ndarray) -> np.ndarray:
    """What is brighter than the paper's typical level (most pixels are paper)."""
    return np.clip(image - np.percentile(image, PAPER_PERCENTILE), 0, None)


def opened_background(image: np.ndarray) -> np.ndarray:
    """The local background (uneven light, shadows, paper tint) estimated by an opening.

    A grey opening with a disk wider than any stroke erases the strokes and keeps everything
    broader, which is the background. The disk grows with the strokes, so a thick marker or an
    enlarged low-resolution digit is not taken for background; it runs at BACKGROUND_SIDE, where
    it costs a sixteenth. An opening cannot follow a gradient up to the frame's edge, so the
    plane comes out first. On grainy paper an opening follows the grain's dark side, which
    above_paper takes out after it. Beyond the frame lies paper: a stroke running along the edge
    (a 7's bar, a 2's base in a tight crop) is not mirrored into a band twice as wide that the
    disk would fit in and take for background.
    """
    radius = max(BACKGROUND_RADIUS, rough_width(image))
    coarse = resized(image, BACKGROUND_SIDE)
    # No wider than the coarse image: a blob filling a tiny image would otherwise ask for a disk of thousands
    side = min(BACKGROUND_SIDE, max(1, round(radius * BACKGROUND_SIDE / max(image.shape))))
    disk = morphology.disk(side, decomposition="sequence")
    paper = float(np.percentile(coarse, PAPER_PERCENTILE))
    background = morphology.opening(coarse, disk, mode="constant", cval=paper)
    return transform.resize(background, image.shape, order=1)


def is_uneven(background: np.ndarray, ink: np.ndarray) -> bool:
    """Whether the opening's background, away from the ink, is brighter than UNEVEN of the ink's contrast.

    A crop so tight that no paper lies away from the ink shows no unevenness to remove.
    """
    if np.ptp(ink) == 0:
        return False
    far = far_from(ink > filters.threshold_otsu(ink))
    return bool(far.any()) and np.percentile(background[far], 99) > UNEVEN * np.percentile(ink, 99.9)


def lighting_plane(image: np.ndarray) -> np.ndarray:
    """The paper's linear gradient of light: a plane fitted to the darker half of the pixels (paper, not ink)."""
    rows, cols = np.indices(image.shape, dtype=np.float32) / max(image.shape)
    paper = image <= np.median(image)
    terms = np.stack([np.ones_like(rows), rows, cols])
    coefficients, *_ = np.linalg.lstsq(terms[:, paper].T, image[paper], rcond=None)
    return np.tensordot(coefficients, terms, axes=1) - coefficients[0]


def noise_level(image: np.ndarray) -> float:
    """The grain's deviation: robust (median absolute) deviation of what a one-pixel blur takes away.

    Strokes and lighting are smooth at that scale and few pixels are on a stroke's edge, so the
    median sees the grain alone.
    """
    fine = image - filters.gaussian(image, 1)
    return float(1.4826 * np.median(np.abs(fine - np.median(fine))))


def grown(mask: np.ndarray, radius: float) -> np.ndarray:
    """The mask dilated by a disk of `radius` (a distance transform: linear time at any radius)."""
    return ndimage.distance_transform_edt(~mask) <= radius


def far_from(core: np.ndarray) -> np.ndarray:
    """Pixels two stroke widths or more from the ink: surely paper."""
    return ~grown(core, 2 * stroke_width(core))


def paper_level(ink: np.ndarray, core: np.ndarray) -> float:
    """How bright the paper gets: the 99.5th percentile of pixels two stroke widths or more from the ink."""
    far = far_from(core)
    return float(np.percentile(ink[far], 99.5)) if far.any() else 0.0


def find_ink(gray: np.ndarray, side: int = WORK_SIDE) -> Ink:
    """Ink against paper at a longer side of `side`, with thresholds set by the image's own noise and contrast.

    A noisy image is smoothed before its background is estimated, in proportion to the strokes'
    width. Hysteresis then keeps grey pixels (blurred or faint strokes) wherever they connect to
    clearly inked ones, so a threshold does not split a stroke, but never pixels the paper itself
    reaches.
    """
    image = light_ink_on_dark(resized(gray, side))
    ink = remove_background(image)
    if np.percentile(filters.gaussian(ink, BLANK_SMOOTHING), 99.9) < MIN_INK_CONTRAST:
        raise NoDigitFound
    if NOISE_SIGMAS * noise_level(image) > NOISY * np.percentile(ink, 99.9):
        ink = remove_background(filters.gaussian(image, max(1.0, rough_width(ink) / 4)))
    high = max(filters.threshold_otsu(ink), 0.25 * float(np.percentile(ink, 99.9)))
    low = min(high, max(0.5 * high, paper_level(ink, ink > high)))
    mask = filters.apply_hysteresis_threshold(ink, low, high)
    return Ink(ink, side / max(gray.shape), mask, low, high, stroke_width(mask))


def parts(ink: Ink) -> np.ndarray:
    """Label the ink's groups: pieces closer than JOIN_WIDTHS stroke widths share a label."""
    return measure.label(grown(ink.mask, JOIN_WIDTHS * ink.width / 2)) * ink.mask


def digit_mask(ink: Ink) -> np.ndarray:
    """The digit: the group holding the most ink; only specks and marks away from it are dropped."""
    groups = parts(ink)
    mass = np.bincount(groups.ravel(), weights=ink.ink.ravel())[1:]
    return groups == mass.argmax() + 1


def bounds(mask: np.ndarray) -> tuple[slice, slice]:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def soft_digit(ink: Ink, mask: np.ndarray, others: np.ndarray | None = None, keep_grey: bool = False) -> np.ndarray:
    """The digit's own ink, cropped, grey edges kept: above the paper's level and scaled to a peak of 1, or
    with `keep_grey` scaled by its brightest pixel alone, the paper's grey inside a blurred digit's loops kept.

    `others` are pixels of other digits (in a number) that may lie next to this one's strokes.
    """
    near = grown(mask, ink.width) if others is None else grown(mask, ink.width) & ~others
    paper = 0.0 if keep_grey else ink.low
    level = float(np.percentile(ink.ink[mask], 100 if keep_grey else 90))
    digit = np.clip((ink.ink - paper) / max(level - paper, 1e-6), 0, 1) * near
    return digit[bounds(mask)]


def thickened(digit: np.ndarray, width: float) -> np.ndarray:
    """Thin strokes dilated to MNIST's relative width (about 11% of the longer side)."""
    missing = STROKE_FRACTION * max(digit.shape) - width
    if missing < 2:
        return digit
    return morphology.dilation(digit, morphology.disk(int(missing // 2)))


def slant(digit: np.ndarray) -> tuple[float, float]:
    """The digit's shear from its moments (mu11 / mu02: columns it moves right per row down) and its centre row."""
    rows, cols = np.indices(digit.shape)
    total = max(float(digit.sum()), 1e-6)
    row, col = (digit * rows).sum() / total, (digit * cols).sum() / total
    mu02 = (digit * (rows - row) ** 2).sum() / total
    return float((digit * (rows - row) * (cols - col)).sum() / total / max(mu02, 1e-6)), float(row)


def deskewed(digit: np.ndarray) -> np.ndarray:
    """Shear a slant beyond MNIST's own range back to its edge (moment deskew, as for MNIST).

    MNIST's digits slant too, and a model trained on them reads those slants; only a digit that
    leans further than 95% of them is straightened, and only as far as that edge.
    """
    lean, row = slant(digit)
    shear = lean - float(np.clip(lean, *MNIST_SLANT))
    if shear == 0:
        return digit
    pad = int(np.ceil(abs(shear) * digit.shape[0]))
    padded = np.pad(digit, ((0, 0), (pad, pad)))
    straight = ndimage.affine_transform(padded, np.array([[1, 0], [shear, 1]]), offset=(0, -shear * row), order=1)
    return straight[bounds(straight > 0.05 * straight.max())]


def fit_box(digit: np.ndarray) -> np.ndarray:
    """Scale the longer side to BOX pixels keeping the aspect ratio.

    Lanczos filtering anti-aliases like MNIST's own normalization did; a Gaussian pre-blur
    (skimage's) would thin and grey the strokes a second time.
    """
    factor = BOX / max(digit.shape)
    height, width = (max(1, round(side * factor)) for side in digit.shape)
    image = Image.fromarray(digit.astype(np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS))


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place the digit in 28x28 so its centre of mass sits in the middle, as MNIST did."""
    frame = np.zeros((SIZE, SIZE), dtype=np.float32)
    top, left = (SIZE - digit.shape[0]) // 2, (SIZE - digit.shape[1]) // 2
    frame[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    row, col = ndimage.center_of_mass(frame)
    return ndimage.shift(frame, (round((SIZE - 1) / 2 - row), round((SIZE - 1) / 2 - col)), order=0, cval=0.0)


def mnist_contrast(frame: np.ndarray) -> np.ndarray:
    """Scale the ink so its brighter part saturates as in MNIST, where half the ink pixels are above 0.9.

    Blur, thin strokes and anti-aliasing leave a real digit greyer than MNIST's; the model was
    trained on MNIST's contrast.
    """
    ink = frame[frame > INK_PIXEL]
    if not ink.size:
        return frame
    return np.clip(frame / np.percentile(ink, SATURATED_FROM), 0, 1)


def mnist_frame(digit: np.ndarray, width: float, keep_grey: bool = False) -> np.ndarray:
    """A cropped digit (light on dark, peak 1) -> MNIST's 28x28 frame, its contrast MNIST's or, with `keep_grey`,
    its own."""
    frame = np.clip(centre_by_mass(fit_box(deskewed(thickened(digit, width)))), 0, 1)
    return frame / max(float(frame.max()), 1e-6) if keep_grey else mnist_contrast(frame)


def to_mnist(gray: np.ndarray, keep_grey: bool = False) -> np.ndarray:
    """A grayscale image in [0, 1] of any size -> a 28x28 float32 MNIST-style digit in [0, 1].

    `keep_grey` is for a model trained on grey ink (`PixelClassifier.keeps_grey`): blurred, faded or
    enlarged low-resolution digits. MNIST's own ink is saturated, and a model that saw only that
    reads a grey digit poorly, so every other model gets the ink's contrast scaled as MNIST's.
    """
    ink = find_ink(gray)
    return mnist_frame(soft_digit(ink, digit_mask(ink), keep_grey=keep_grey), ink.width, keep_grey)
