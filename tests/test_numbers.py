"""Whole numbers: the ink split into digits left to right, touching digits cut where the cut is clear."""

from __future__ import annotations

from itertools import pairwise
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digit_images import on_uneven_paper, written
from mnist_cnn.wild.categories import REPORTING, mnist_test, numbers
from mnist_cnn.wild.classifier import load_classifier
from mnist_cnn.wild.numbers import CONTINUITY, NUMBER_SIDE, candidate_parts, groups_of, split_digits, strokes_of
from mnist_cnn.wild.preprocess import find_ink
from mnist_cnn.wild.reading import read

WRITTEN = ("2024", "1975", "380", "4668")


def undecided(views: np.ndarray) -> np.ndarray:
    """A stand-in model with no opinion: where to cut is then decided by the digits' shapes alone."""
    return np.full((len(views), 10), 0.1)


def gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255


def photo(number: str, seed: int = 0) -> np.ndarray:
    """A number written in dark pen on unevenly lit, grainy paper."""
    return gray(on_uneven_paper(written(number, seed=seed), seed=seed))


@pytest.mark.parametrize("number", WRITTEN)
def test_a_written_number_splits_into_its_digits_left_to_right(number):
    views, boxes = split_digits(photo(number), undecided)
    assert views.shape == (len(number), 28, 28)
    lefts = [box.left for box in boxes]
    assert lefts == sorted(lefts) and all(box.right > box.left and box.bottom > box.top for box in boxes)
    assert all(later.left >= earlier.right - 10 for earlier, later in pairwise(boxes))  # next to each other


def test_a_stroke_running_on_through_a_junction_costs_more_to_cut_than_one_meeting_it():
    tee = np.zeros((120, 120), bool)
    tee[20:30, 10:110] = True  # the bar, running on through the junction
    tee[30:110, 55:65] = True  # the stem, meeting it
    strokes = strokes_of(tee, width=10)
    assert len(strokes.order) == 3 and len(strokes.joints) == 1
    left, stem, right = (frozenset({number}) for number in strokes.order)
    assert strokes.cuts([left | right, stem]) == pytest.approx(1, abs=0.05)  # the stem off: it meets at an angle
    assert strokes.cuts([left | stem, right]) == pytest.approx(1 + CONTINUITY, abs=0.05)  # one line taken apart


def test_the_candidate_parts_of_a_group_are_runs_of_its_strokes_and_the_whole():
    tee = np.zeros((120, 120), bool)
    tee[20:30, 10:110] = True
    tee[30:110, 55:65] = True
    parts = candidate_parts(tee, 10)
    assert any((part == tee).all() for part in parts)  # the whole is one candidate
    assert all(part.any() and not (part & ~tee).any() for part in parts)  # the others are pieces of it
    # runs of the bar's left, the stem and the bar's right, in order (3 + 2 + 1), but the stem alone: a sliver
    # 10 px wide is no digit beside a group 100 px tall
    assert len(parts) == 5
    stem = np.zeros_like(tee)
    stem[10:110, 55:65] = True
    assert len(candidate_parts(stem, 10)) == 1  # one digit's width: never divided


def test_a_tangle_is_read_whole_not_divided_every_way():
    grid = Image.new("L", (1024, 400), 255)
    draw = ImageDraw.Draw(grid)
    for x in range(0, 1024, 24):
        draw.line([(x, 0), (x, 400)], fill=0, width=3)
    for y in range(0, 400, 24):
        draw.line([(0, y), (1024, y)], fill=0, width=3)
    seen = []
    views, _ = split_digits(gray(grid), lambda views: seen.append(len(views)) or undecided(views))
    assert len(views) >= 1 and sum(seen) == 0  # no part of it read to choose a division (hundreds were)


def test_pieces_are_grouped_into_digits_and_specks_dropped():
    page = Image.new("L", (400, 200), 255)
    draw = ImageDraw.Draw(page)
    draw.line([(60, 80), (60, 170)], fill=0, width=10)  # a stem ...
    draw.line([(50, 40), (110, 40), (110, 90)], fill=0, width=10)  # ... with its bar apart above it (a 5's)
    draw.ellipse([(180, 50), (260, 170)], outline=0, width=10)  # a 0 ...
    draw.line([(265, 45), (275, 35)], fill=0, width=10)  # ... with a broken-off flick beside it
    rng = np.random.default_rng(0)
    for x, y in rng.integers([300, 5], [395, 195], size=(300, 2)):
        draw.point([(int(x), int(y))], fill=0)  # grain: 300 specks
    groups = groups_of(find_ink(gray(page), NUMBER_SIDE))
    scale = NUMBER_SIDE / 400
    assert len(groups) == 2
    stem_and_bar, ring = sorted(groups, key=lambda group: np.nonzero(group)[1].mean())
    assert stem_and_bar[int(40 * scale), int(80 * scale)] and stem_and_bar[int(120 * scale), int(60 * scale)]
    assert ring[int(40 * scale), int(270 * scale)]  # the flick joined its digit
    assert not any(group[:, int(300 * scale) :].any() for group in groups)  # the specks joined nothing


def test_a_blank_page_has_no_number():
    never_asked = SimpleNamespace(keeps_grey=False)  # a blank page reaches no model
    answer = read(never_asked, gray(on_uneven_paper(Image.new("L", (300, 120), 0))), numbers=True)
    assert answer.digits == [] and answer.number == "" and answer.verdict == "no digit found"


@pytest.mark.slow
def test_composed_mnist_test_numbers_split_into_four_digits(real_mnist):
    images, labels = mnist_test(real_mnist, REPORTING)
    grays, texts = numbers(images, labels, 60, seed=7)
    counts = [len(split_digits(image, undecided)[0]) for image in grays]
    assert np.mean([count == 4 for count in counts]) >= 0.8


@pytest.mark.slow
def test_a_model_trained_on_mnist_reads_composed_and_written_numbers(mnist_model, real_mnist):
    classifier = load_classifier(mnist_model)
    images, labels = mnist_test(real_mnist, REPORTING)
    grays, texts = numbers(images, labels, 60, seed=8)
    exact = [read(classifier, image, numbers=True).number == text for image, text in zip(grays, texts, strict=True)]
    assert np.mean(exact) >= 0.75  # benchmarks/real_world.py measures it on more numbers and models
    assert [read(classifier, photo(number), numbers=True).number for number in WRITTEN] == list(WRITTEN)


@pytest.mark.slow
@pytest.mark.parametrize("number", ["4668", "380"])
def test_touching_digits_are_cut_apart_where_the_cut_is_clear(mnist_model, number):
    touching = gray(on_uneven_paper(written(number, advance=0.6, seed=1)))
    assert len(groups_of(find_ink(touching, NUMBER_SIDE))) < len(number)  # they touch: fewer pieces than digits
    assert read(load_classifier(mnist_model), touching, numbers=True).number == number
