"""Split a written number into its digits, left to right, each an MNIST-style 28x28 digit with its box.

The ink is found as for one digit (`preprocess.find_ink`). Its connected groups are the digits,
once a piece stacked above or below another (like the bar of a 5) is joined to it, small broken-off
fragments are joined to their nearest neighbour and specks are dropped. A group may still be
touching digits. Touching digits meet where a stroke of one runs into a stroke of the other, a
junction of the ink's skeleton, so the group is divided into strokes (the skeleton's branches
between junctions) and each digit is a set of whole strokes: a cut along a path could not separate
digits whose strokes overlap in their columns. Of the divisions into runs of strokes left to right
(dynamic programming), improved by moving strokes between neighbouring parts, the one whose parts
read best wins; the group whole is one of them. How well a part reads is the model's confidence and
how usual its shape is for the digit read: MNIST's digits of each class have their typical width
for their height (a 1 is half as wide as a 0), and how likely it is to be one whole digit at all, as
the judge (mnist_cnn.wild.judge) sees it. A model's confidence alone would not do: trained on whole
digits only, it often reads two touching digits as one digit, confidently, and a digit's piece (a 6
without its loop) as another digit. Each junction a division breaks costs, more where a line runs
on smoothly through it (a digit's own stroke).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations, pairwise

import numpy as np
from scipy import ndimage
from skimage import measure, morphology

from mnist_cnn.wild.judge import log_whole
from mnist_cnn.wild.preprocess import Ink, bounds, find_ink, mnist_frame, soft_digit

Reader = Callable[[np.ndarray], np.ndarray]  # (N, 28, 28) digits -> (N, 10) probabilities
Viewer = Callable[[np.ndarray], np.ndarray]  # a digit's mask in the number's ink -> its 28x28 view

NUMBER_SIDE = 512  # a number is analysed at this longer side: its digits get the pixels one digit gets at 256
SPECK_SHARE = 0.05  # a group with less ink than this share of the largest group's is a speck
FRAGMENT_SHARE = 0.4  # a group less tall than this share of the typical group is a broken-off fragment
STACKED = 0.5  # pieces overlapping by this share of the narrower's width, and not side by side, are one digit
SPLIT_FROM = 0.5  # a group narrower than this many times its height is one digit (two touching 1s are wider)
NARROWEST_PART = 0.15  # a part of a divided group is at least this many of the group's heights wide
JUNCTION_REACH = 2  # px: skeleton pixels this close to a fork belong to the junction, so branches end clear of it
CONTINUITY = 0.5  # a junction cut through one line (strokes leaving it in opposite directions) costs this much more
DIRECTION_REACH = 2.0  # stroke widths: a stroke's direction at a junction is measured this far along it
MOST_STROKES = 12  # a group of more strokes is read whole: a tangle, not a few touching digits (those have up to 9)
SPLIT_COST = 0.5  # per junction a division breaks, its parts must fit this much better (log-likelihood) than the whole
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


@dataclass(frozen=True)
class Piece:
    """Connected pieces of clear ink taken as one so far: their labels, their joint box and their ink.

    Joining pieces compares boxes only, never whole masks, so an image of a thousand specks (noise,
    a textured page) is grouped as quickly as a number of four digits.
    """

    labels: frozenset[int]
    box: tuple[int, int, int, int]  # left, top, right, bottom
    mass: float

    def __or__(self, other: Piece) -> Piece:
        (left1, top1, right1, bottom1), (left2, top2, right2, bottom2) = self.box, other.box
        box = (min(left1, left2), min(top1, top2), max(right1, right2), max(bottom1, bottom2))
        return Piece(self.labels | other.labels, box, self.mass + other.mass)

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


def pieces_of(labels: np.ndarray, ink: np.ndarray) -> list[Piece]:
    """Each labelled connected piece with its box and the ink it holds."""
    masses = ndimage.sum_labels(ink, labels, index=np.arange(1, labels.max() + 1))
    return [
        Piece(frozenset({number}), (cols.start, rows.start, cols.stop, rows.stop), float(mass))
        for number, ((rows, cols), mass) in enumerate(zip(ndimage.find_objects(labels), masses, strict=True), 1)
    ]


def stacked(first: Piece, second: Piece) -> bool:
    """Two pieces of one digit: they share most of the narrower one's columns but few of their rows."""
    left1, top1, right1, bottom1 = first.box
    left2, top2, right2, bottom2 = second.box
    across = overlap((left1, right1), (left2, right2)) / min(right1 - left1, right2 - left2)
    along = overlap((top1, bottom1), (top2, bottom2)) / min(bottom1 - top1, bottom2 - top2)
    return across >= STACKED and along < STACKED


def joined(groups: list[Piece], belong: Callable[[list[Piece], int, int], bool]) -> list[Piece]:
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


def columns_apart(first: Piece, second: Piece) -> int:
    """How many columns lie between two pieces (negative: how many they share)."""
    left1, _, right1, _ = first.box
    left2, _, right2, _ = second.box
    return max(left1, left2) - min(right1, right2)


def fragment_of(groups: list[Piece], i: int, j: int) -> bool:
    """Whether group i is a broken-off fragment (less than FRAGMENT_SHARE of the typical digit's height) and j
    the group it belongs to: the one sharing most of its columns, or the nearest."""
    if len(groups) < 2 or groups[i].height >= FRAGMENT_SHARE * np.median([group.height for group in groups]):
        return False
    others = [k for k in range(len(groups)) if k != i]
    return j == min(others, key=lambda k: columns_apart(groups[i], groups[k]))


def groups_of(ink: Ink) -> list[np.ndarray]:
    """The ink's groups: stacked pieces joined, specks dropped, fragments joined to their nearest group.

    Pieces are the clearly inked pixels' (above `high`), so the faint rims of two neighbouring
    digits do not join them; each group then takes back the fainter ink within a stroke's width.
    """
    labels = measure.label(ink.ink > ink.high)
    pieces = joined(pieces_of(labels, ink.ink), lambda g, i, j: stacked(g[i], g[j]))
    heaviest = max(piece.mass for piece in pieces)
    pieces = joined([piece for piece in pieces if piece.mass >= SPECK_SHARE * heaviest], fragment_of)
    numbering = np.zeros(labels.max() + 1, np.int32)
    for number, piece in enumerate(pieces, 1):
        numbering[list(piece.labels)] = number
    owner = numbering[labels]
    distance, (rows, cols) = ndimage.distance_transform_edt(owner == 0, return_indices=True)
    nearest = np.where(ink.mask & (distance <= ink.width), owner[rows, cols], 0)
    return [nearest == number for number in range(1, len(pieces) + 1)]


def width(mask: np.ndarray) -> int:
    left, _, right, _ = extent(mask)
    return right - left


def aspect(mask: np.ndarray) -> float:
    left, top, right, bottom = extent(mask)
    return (right - left) / (bottom - top)


def fit(probabilities: np.ndarray, mask: np.ndarray, tallest: float = np.inf) -> float:
    """How well a part reads as a digit: log confidence, less the squared z-score of its width for that digit
    where it is wider than usual (two digits read as one are; a narrow hand is no reason to doubt a digit).

    The width is measured against the part's height, at most `tallest`: the number's usual digit height,
    so a digit reaching below its neighbour (a 1 under a 7's bar) cannot make two digits look one narrow one.
    """
    digit = int(probabilities.argmax())
    left, top, right, bottom = extent(mask)
    wider = max(0.0, ((right - left) / min(bottom - top, tallest) - ASPECT_MEAN[digit]) / ASPECT_STD[digit])
    return float(np.log(max(probabilities[digit], 1e-9)) - wider**2 / 2)


@dataclass(frozen=True)
class Joint:
    """Where strokes meet: the direction each leaves in (a unit vector, rows and columns), by stroke."""

    directions: dict[int, np.ndarray]

    @property
    def strokes(self) -> frozenset[int]:
        return frozenset(self.directions)

    def cost(self, parts: list[frozenset[int]]) -> float:
        """What dividing it among parts costs: one per part beyond the first, more where a stroke runs on
        smoothly into a stroke of another part (one line, the same digit's)."""
        sides = [side for part in parts if (side := self.strokes & part)]
        if len(sides) < 2:
            return 0.0
        smooth = max(
            (
                -float(self.directions[a] @ self.directions[b])
                for one, other in combinations(sides, 2)
                for a in one
                for b in other
            ),
            default=0.0,
        )
        return len(sides) - 1 + CONTINUITY * max(0.0, smooth)


@dataclass(frozen=True)
class Strokes:
    """A group's ink divided into strokes: the skeleton's branches between its junctions, each ink pixel given
    to the nearest. Two touching digits meet at a junction, so each digit is a set of whole strokes."""

    owner: np.ndarray  # per pixel of the group: its stroke's number (1, 2, ...); 0 off the group
    order: list[int]  # the strokes' numbers, left to right by their centre column
    joints: list[Joint]

    def mask(self, strokes: frozenset[int]) -> np.ndarray:
        return np.isin(self.owner, list(strokes))

    def cuts(self, parts: list[frozenset[int]]) -> float:
        """What the division into parts costs at the junctions it breaks."""
        return sum(joint.cost(parts) for joint in self.joints)


def directions(branches: np.ndarray, around: np.ndarray, reach: float) -> dict[int, np.ndarray]:
    """The direction in which each stroke leaves a junction: towards its skeleton within `reach` of it."""
    centre = np.array(ndimage.center_of_mass(around))
    rows, cols = np.nonzero(branches)
    found = {}
    for stroke in np.unique(branches[ndimage.binary_dilation(around, np.ones((3, 3))) & (branches > 0)]):
        points = np.stack([rows, cols], 1)[branches[rows, cols] == stroke] - centre
        near = points[np.hypot(*points.T) <= reach]
        mean = near.mean(0) if len(near) else points.mean(0)
        found[int(stroke)] = mean / max(float(np.hypot(*mean)), 1e-6)
    return found


def strokes_of(group: np.ndarray, width: float) -> Strokes | None:
    """The group's strokes: skeleton branches at least a stroke width long (shorter spurs join their neighbour).

    None for more than MOST_STROKES: such a tangle is read whole, before its junctions cost any time.
    """
    skeleton = morphology.skeletonize(group)
    neighbours = ndimage.convolve(skeleton.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant") - 1
    junctions = ndimage.binary_dilation(skeleton & (neighbours >= 3), iterations=JUNCTION_REACH)
    branches = measure.label(skeleton & ~junctions, connectivity=2)
    lengths = np.bincount(branches.ravel())
    long_enough = np.flatnonzero(lengths >= width)
    branches = np.where(np.isin(branches, long_enough[long_enough > 0]), branches, 0)
    branches = np.unique(branches, return_inverse=True)[1].reshape(branches.shape)  # numbered 1, 2, ...
    if branches.max() > MOST_STROKES:
        return None
    _, (rows, cols) = ndimage.distance_transform_edt(branches == 0, return_indices=True)
    owner = np.where(group, branches[rows, cols], 0) if branches.any() else group.astype(np.int64)
    labels = measure.label(junctions)
    joints = [
        Joint(directions(branches, labels == joint, DIRECTION_REACH * width)) for joint in range(1, labels.max() + 1)
    ]
    numbers = range(1, owner.max() + 1)
    centres = [np.nonzero(owner == number)[1].mean() for number in numbers]
    return Strokes(
        owner, [numbers[k] for k in np.argsort(centres)], [joint for joint in joints if len(joint.strokes) > 1]
    )


def divisible(group: np.ndarray, stroke_width: float) -> Strokes | None:
    """The group's strokes where it may be touching digits: wider than one digit and of several strokes."""
    strokes = strokes_of(group, stroke_width) if aspect(group) >= SPLIT_FROM else None
    return strokes if strokes is not None and len(strokes.order) >= 2 else None


def runs(order: list[int], usable: Callable[[frozenset[int]], bool]) -> dict[tuple[int, int], frozenset[int]]:
    """Each run of strokes, by (start, stop) in their left-to-right order, that is usable as a part; and the whole."""
    count = len(order)
    every = {
        (start, stop): frozenset(order[start:stop]) for start in range(count) for stop in range(start + 1, count + 1)
    }
    return {key: run for key, run in every.items() if key == (0, count) or usable(run)}


class StrokeParts:
    """The parts of one group made of its strokes: each part's pixels found once, and whether it could be a digit."""

    def __init__(self, group: np.ndarray, strokes: Strokes):
        self.strokes = strokes
        self.narrowest = NARROWEST_PART * height(group)
        self.masks: dict[frozenset[int], np.ndarray] = {}

    def mask(self, part: frozenset[int]) -> np.ndarray:
        """The part's pixels, found once: a division is tried as a usable part, read, and scored again."""
        if part not in self.masks:
            self.masks[part] = self.strokes.mask(part)
        return self.masks[part]

    def usable(self, part: frozenset[int]) -> bool:
        """At least NARROWEST_PART of the group's height wide: no sliver of a stroke."""
        mask = self.mask(part)
        return bool(mask.any()) and width(mask) >= self.narrowest


def candidate_parts(group: np.ndarray, stroke_width: float) -> list[np.ndarray]:
    """Every part a division of the group into runs of strokes may hold, the whole group among them: what the
    judge learns to tell apart (mnist_cnn.wild.judge_training)."""
    strokes = divisible(group, stroke_width)
    if strokes is None:
        return [group]
    parts = StrokeParts(group, strokes)
    return [group & parts.mask(run) for run in runs(strokes.order, parts.usable).values()]


class Parts(StrokeParts):
    """Scores divisions of one group into digits: how well each part reads (`fit`) and how surely it is one whole
    digit (the judge), less SPLIT_COST per junction broken; each part read once."""

    def __init__(self, group: np.ndarray, strokes: Strokes, view: Viewer, read: Reader, tallest: float):
        super().__init__(group, strokes)
        self.view, self.read, self.tallest = view, read, tallest
        self.fits: dict[frozenset[int], float] = {}

    def read_all(self, parts: list[frozenset[int]]) -> None:
        """Read the parts not read before, in one batch."""
        new = [part for part in dict.fromkeys(parts) if part not in self.fits]
        if new:
            masks = [self.mask(part) for part in new]
            views = np.stack([self.view(mask) for mask in masks])
            for part, mask, scores, whole in zip(new, masks, self.read(views), log_whole(views), strict=True):
                self.fits[part] = fit(scores, mask, self.tallest) + whole

    def score(self, parts: list[frozenset[int]]) -> float:
        self.read_all(parts)
        return sum(self.fits[part] for part in parts) - SPLIT_COST * self.strokes.cuts(parts)


def left_to_right(parts: Parts) -> list[frozenset[int]]:
    """The best division into runs of strokes in left-to-right order (dynamic programming over the runs)."""
    count = len(parts.strokes.order)
    usable = runs(parts.strokes.order, parts.usable)
    parts.read_all(list(usable.values()))
    best: dict[int, list[frozenset[int]]] = {0: []}  # the best division of the first strokes, by their count
    for stop in range(1, count + 1):
        options = [
            [*best[start], usable[start, stop]] for start in range(stop) if start in best and (start, stop) in usable
        ]
        if options:
            best[stop] = max(options, key=parts.score)
    return best.get(count, [frozenset(parts.strokes.order)])


def movable(part: frozenset[int], strokes: Strokes) -> list[frozenset[int]]:
    """What may move out of a part at once: each stroke, and each two of its strokes that meet at a junction
    (a loop's arc split where the neighbour touches it)."""
    pairs = {frozenset(pair) for joint in strokes.joints for pair in combinations(joint.strokes & part, 2)}
    return [frozenset({stroke}) for stroke in part] + sorted(pairs, key=sorted)


def with_strokes_moved(division: list[frozenset[int]], parts: Parts) -> list[frozenset[int]]:
    """Move strokes between neighbouring parts while that scores better: where two digits overlap, a stroke
    of the left one can lie right of the right one's first stroke, which no run in order holds."""
    best = parts.score(division)
    improved = True
    while improved:
        improved = False
        for index, (left, right) in enumerate(pairwise(division)):
            moves = [(left - moved, right | moved) for moved in movable(left, parts.strokes)]
            moves += [(left | moved, right - moved) for moved in movable(right, parts.strokes)]
            for new_left, new_right in moves:
                if not (parts.usable(new_left) and parts.usable(new_right)):
                    continue
                candidate = [*division[:index], new_left, new_right, *division[index + 2 :]]
                if (score := parts.score(candidate)) > best:
                    division, best, improved = candidate, score, True
                    break
            if improved:
                break
    return division


def split_touching(
    group: np.ndarray, stroke_width: float, view: Viewer, read: Reader, tallest: float = np.inf
) -> list[np.ndarray]:
    """The group as one digit or divided into touching digits: whichever division into whole strokes reads best.

    A division costs SPLIT_COST per junction it breaks: two digits that touch break one or two, a digit
    cut through its own strokes must buy that with a much better reading.
    """
    strokes = divisible(group, stroke_width)
    if strokes is None:
        return [group]
    parts = Parts(group, strokes, view, read, tallest)
    division = with_strokes_moved(left_to_right(parts), parts)
    return [group & parts.mask(part) for part in division]


def digit_view(ink: Ink, mask: np.ndarray, keep_grey: bool) -> np.ndarray:
    """One digit's 28x28 view, without the ink of its neighbours (`to_mnist` says what `keep_grey` is for)."""
    return mnist_frame(soft_digit(ink, mask, ink.mask & ~mask, keep_grey), ink.width, keep_grey)


def original_box(mask: np.ndarray, scale: float) -> Box:
    left, top, right, bottom = extent(mask)
    return Box(int(left / scale), int(top / scale), int(np.ceil(right / scale)), int(np.ceil(bottom / scale)))


def split_digits(gray: np.ndarray, read: Reader, keep_grey: bool = False) -> tuple[np.ndarray, list[Box]]:
    """The digits of a written number, left to right: (N, 28, 28) MNIST-style digits and their boxes.

    `read` chooses how touching digits are divided: into the parts it reads best as digits (`split_touching`).
    """
    ink = find_ink(gray, NUMBER_SIDE)
    groups = groups_of(ink)
    usual_height = float(np.median([height(group) for group in groups])) if len(groups) > 1 else np.inf

    def view(mask: np.ndarray) -> np.ndarray:
        return digit_view(ink, mask, keep_grey)

    digits = [part for group in groups for part in split_touching(group, ink.width, view, read, usual_height)]
    digits.sort(key=centre_column)
    return np.stack([view(mask) for mask in digits]), [original_box(mask, ink.scale) for mask in digits]
