"""Split a written number into its digits, left to right, each an MNIST-style 28x28 digit with its box.

The ink is found as for one digit (`preprocess.find_ink`). Its connected groups are the digits,
once a piece stacked above or below another (like the bar of a 5) is joined to it, small broken-off
fragments are joined to their nearest neighbour and specks are dropped. A group may still be
touching digits: where a cut is clear (a column that crosses at most CLEAR_CUT strokes), the
group whole and cut in two are compared by how well each part reads as a digit, and the better
wins, again for each part. How well a part reads is the model's confidence and how usual its
shape is for the digit read: MNIST's digits of each class have their typical width for their
height (a 1 is half as wide as a 0). A model's confidence alone would not do: it often reads two
touching digits as one digit, confidently, but then as one far too wide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import measure

from mnist_cnn.wild.preprocess import Ink, bounds, find_ink, mnist_frame, soft_digit

Reader = Callable[[np.ndarray], np.ndarray]  # (N, 28, 28) digits -> (N, 10) probabilities

NUMBER_SIDE = 512  # a number is analysed at this longer side: its digits get the pixels one digit gets at 256
SPECK_SHARE = 0.05  # a group with less ink than this share of the largest group's is a speck
FRAGMENT_SHARE = 0.4  # a group less tall than this share of the typical group is a broken-off fragment
STACKED = 0.5  # pieces overlapping by this share of the narrower's width, and not side by side, are one digit
SPLIT_FROM = 0.75  # a group narrower than this many times its height is one digit (two 1s are about this wide)
NARROWEST_PART = 0.15  # a cut leaves at least this many heights on either side
CLEAR_CUT = 2  # a clear cut crosses at most this many stroke widths of ink
PATH_REACH = 0.25  # a cut path strays at most this many heights from its column
SPLIT_COST = 1.0  # per stroke a cut crosses, its parts must fit this much better (log-likelihood) than the whole
# Width over height of the ink box of MNIST's training digits, per class: mean and standard deviation.
ASPECT_MEAN = np.array([0.92, 0.46, 0.96, 0.82, 0.82, 0.96, 0.76, 0.80, 0.79, 0.71])
ASPECT_STD = np.array([0.17, 0.20, 0.20, 0.16, 0.16, 0.23, 0.15, 0.16, 0.16, 0.14])


@dataclass(frozen=True)
class Box:
    """A digit's place in the original image, in its pixels: columns [left, right), rows [top, bottom)."""

    left: int
    top: int
    right: int
    bottom: int


def extent(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a mask's pixels."""
    rows, cols = bounds(mask)
    return cols.start, rows.start, cols.stop, rows.stop


def overlap(first: tuple[int, int], second: tuple[int, int]) -> int:
    return max(0, min(first[1], second[1]) - max(first[0], second[0]))


def stacked(first: np.ndarray, second: np.ndarray) -> bool:
    """Two pieces of one digit: they share most of the narrower one's columns but few of their rows."""
    left1, top1, right1, bottom1 = extent(first)
    left2, top2, right2, bottom2 = extent(second)
    across = overlap((left1, right1), (left2, right2)) / min(right1 - left1, right2 - left2)
    along = overlap((top1, bottom1), (top2, bottom2)) / min(bottom1 - top1, bottom2 - top2)
    return across >= STACKED and along < STACKED


def joined(groups: list[np.ndarray], belong: Callable[[list[np.ndarray], int, int], bool]) -> list[np.ndarray]:
    """Join group i into group j while some `belong(groups, i, j)` says they are one digit."""
    groups = list(groups)
    pairs = ((i, j) for i in range(len(groups)) for j in range(len(groups)) if i != j)
    while (pair := next((pair for pair in pairs if belong(groups, *pair)), None)) is not None:
        part, whole = pair
        groups[whole] = groups[whole] | groups[part]
        groups.pop(part)
        pairs = ((i, j) for i in range(len(groups)) for j in range(len(groups)) if i != j)
    return groups


def centre_column(mask: np.ndarray) -> float:
    return float(np.nonzero(mask)[1].mean())


def height(mask: np.ndarray) -> int:
    _, top, _, bottom = extent(mask)
    return bottom - top


def columns_apart(first: np.ndarray, second: np.ndarray) -> int:
    """How many columns lie between two masks (negative: how many they share)."""
    left1, _, right1, _ = extent(first)
    left2, _, right2, _ = extent(second)
    return max(left1, left2) - min(right1, right2)


def fragment_of(groups: list[np.ndarray], i: int, j: int) -> bool:
    """Whether group i is a broken-off fragment (less than FRAGMENT_SHARE of the typical digit's height) and j
    the group it belongs to: the one sharing most of its columns, or the nearest."""
    if len(groups) < 2 or height(groups[i]) >= FRAGMENT_SHARE * np.median([height(group) for group in groups]):
        return False
    others = [k for k in range(len(groups)) if k != i]
    return j == min(others, key=lambda k: columns_apart(groups[i], groups[k]))


def groups_of(ink: Ink) -> list[np.ndarray]:
    """The ink's groups: stacked pieces joined, specks dropped, fragments joined to their nearest group.

    Pieces are the clearly inked pixels' (above `high`), so the faint rims of two neighbouring
    digits do not join them; each group then takes back the fainter ink within a stroke's width.
    """
    labels = measure.label(ink.ink > ink.high)
    pieces = joined([labels == label for label in range(1, labels.max() + 1)], lambda g, i, j: stacked(g[i], g[j]))
    mass = [float(ink.ink[piece].sum()) for piece in pieces]
    pieces = joined(
        [piece for piece, weight in zip(pieces, mass, strict=True) if weight >= SPECK_SHARE * max(mass)],
        fragment_of,
    )
    owner = np.zeros(ink.mask.shape, np.int32)
    for number, piece in enumerate(pieces, 1):
        owner[piece] = number
    distance, (rows, cols) = ndimage.distance_transform_edt(owner == 0, return_indices=True)
    nearest = np.where(ink.mask & (distance <= ink.width), owner[rows, cols], 0)
    return [nearest == number for number in range(1, len(pieces) + 1)]


def cut_path(group: np.ndarray, column: int) -> tuple[np.ndarray, float]:
    """The path from the group's top row to its bottom row near `column` that crosses the least ink.

    It may move one column per row, within PATH_REACH heights of `column`, so it can slip between a
    slanted digit and its neighbour where a straight cut would run through a stroke. Returns the
    path's column in each of the group's rows, and the ink pixels it crosses.
    """
    left, top, right, bottom = extent(group)
    reach = max(1, round(PATH_REACH * (bottom - top)))
    low, high = max(left, column - reach), min(right, column + reach + 1)
    total = group[top:bottom, low:high].astype(float)
    for row in range(1, len(total)):
        above = total[row - 1]
        total[row] += np.minimum(above, np.minimum(np.r_[np.inf, above[:-1]], np.r_[above[1:], np.inf]))
    path = np.empty(len(total), int)
    path[-1] = int(total[-1].argmin())
    for row in range(len(total) - 2, -1, -1):
        start = max(0, path[row + 1] - 1)
        path[row] = start + int(total[row, start : path[row + 1] + 2].argmin())
    return low + path, float(total[-1].min())


def clear_cuts(group: np.ndarray, stroke: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """The two parts of each clear cut of a group and the strokes it crosses: along paths from the valleys in
    how much ink each column crosses, each crossing at most CLEAR_CUT strokes and leaving parts at least
    NARROWEST_PART heights wide."""
    left, top, right, bottom = extent(group)
    margin = round(NARROWEST_PART * (bottom - top))
    crossing = ndimage.uniform_filter1d(group[:, left:right].sum(0).astype(float), max(1, round(stroke / 2)))
    valleys = np.flatnonzero(crossing == ndimage.minimum_filter1d(crossing, max(3, round(stroke))))
    paths = [cut_path(group, left + int(column)) for column in valleys if margin <= column < right - left - margin]
    cuts = [(*halves(group, path), ink / stroke) for path, ink in paths if ink <= CLEAR_CUT * stroke]
    return [cut for cut in cuts if all(part.any() and width(part) >= margin for part in cut[:2])]


def width(mask: np.ndarray) -> int:
    left, _, right, _ = extent(mask)
    return right - left


def halves(group: np.ndarray, path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The group's pixels left and right of a cut path."""
    _, top, _, _ = extent(group)
    columns = np.arange(group.shape[1])
    left_of = np.zeros_like(group)
    left_of[top : top + len(path)] = columns[None, :] < path[:, None]
    return group & left_of, group & ~left_of


def aspect(mask: np.ndarray) -> float:
    left, top, right, bottom = extent(mask)
    return (right - left) / (bottom - top)


def fit(probabilities: np.ndarray, mask: np.ndarray) -> float:
    """How well a part reads as a digit: log confidence, less the squared z-score of its width for that digit
    where it is wider than usual (two digits read as one are; a narrow hand is no reason to doubt a digit)."""
    digit = int(probabilities.argmax())
    wider = max(0.0, (aspect(mask) - ASPECT_MEAN[digit]) / ASPECT_STD[digit])
    return float(np.log(max(probabilities[digit], 1e-9)) - wider**2 / 2)


def split_touching(group: np.ndarray, ink: Ink, everything: np.ndarray, read: Reader) -> list[np.ndarray]:
    """The group as one digit, or cut at the clear cut whose two parts fit best as digits, each again the same way.

    A cut costs SPLIT_COST per stroke it crosses: two digits that barely touch come apart easily,
    a cut through a digit's own strokes must buy its way with a much better fit.
    """
    cuts = clear_cuts(group, ink.width) if aspect(group) >= SPLIT_FROM else []
    if not cuts:
        return [group]
    options = [((group,), 0.0), *(((left, right), strokes) for left, right, strokes in cuts)]
    parts = [part for option, _ in options for part in option]
    scores = read(np.stack([digit_view(ink, part, everything) for part in parts]))
    fits = iter(fit(score, part) for score, part in zip(scores, parts, strict=True))
    totals = [sum(next(fits) for _ in option) - SPLIT_COST * strokes for option, strokes in options]
    best = options[int(np.argmax(totals))][0]
    if len(best) == 1:
        return [group]
    return [digit for part in best for digit in split_touching(part, ink, everything, read)]


def digit_view(ink: Ink, mask: np.ndarray, everything: np.ndarray) -> np.ndarray:
    """One digit's 28x28 view, without the ink of its neighbours."""
    return mnist_frame(soft_digit(ink, mask, everything & ~mask), ink.width)


def original_box(mask: np.ndarray, scale: float) -> Box:
    left, top, right, bottom = extent(mask)
    return Box(int(left / scale), int(top / scale), int(np.ceil(right / scale)), int(np.ceil(bottom / scale)))


def split_digits(gray: np.ndarray, read: Reader) -> tuple[np.ndarray, list[Box]]:
    """The digits of a written number, left to right: (N, 28, 28) MNIST-style digits and their boxes.

    `read` chooses where touching digits are cut: at the cut whose two parts it reads most confidently.
    """
    ink = find_ink(gray, NUMBER_SIDE)
    everything = ink.mask
    digits = [part for group in groups_of(ink) for part in split_touching(group, ink, everything, read)]
    digits.sort(key=centre_column)
    return np.stack([digit_view(ink, mask, everything) for mask in digits]), [
        original_box(mask, ink.scale) for mask in digits
    ]
