"""The "not sure" threshold: calibrated on the tuning half, stored with the run, used by predict and serve."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import run_command
from digit_images import encoded, on_uneven_paper, zero
from mnist_cnn.calibrate import caught, main
from mnist_cnn.errors import EXIT_USER_ERROR, UserError
from mnist_cnn.predict import predict_files
from mnist_cnn.rundir import RunDir
from mnist_cnn.serve import create_app
from mnist_cnn.wild import calibration
from mnist_cnn.wild.calibration import SURE_ACCURACY, calibrated_threshold, expected_calibration_error, run_threshold
from mnist_cnn.wild.categories import CATEGORIES, REPORTING, TUNING, mnist_test
from mnist_cnn.wild.classifier import load_classifier, probabilities
from mnist_cnn.wild.reading import NOT_SURE_BELOW


def answers_with(confidences: list[float], right: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Two-class scores with the given confidences, and labels that make each answer right or wrong."""
    confidence = np.array(confidences)
    scores = np.stack([confidence, 1 - confidence], 1)
    return scores, np.where(right, 0, 1)


def test_the_threshold_is_the_lowest_confidence_whose_answers_above_are_right_often_enough():
    confidences = list(np.linspace(0.999, 0.6, 200))
    right = [True] * 200
    right[100] = right[150] = right[160] = right[170] = False
    scores, labels = answers_with(confidences, right)
    threshold = calibrated_threshold(scores, labels)
    sure = scores.max(1) >= threshold
    assert (scores.argmax(1) == labels)[sure].mean() >= SURE_ACCURACY
    # 1 wrong in the top 150 is within 1%; from the 151st answer on, 2 wrong would need 200 answers
    assert threshold == pytest.approx(confidences[149])


def test_a_run_right_more_often_than_asked_still_doubts_half_its_mistakes():
    """Right 996 times in 1,000, every threshold keeps 99% of sure answers right: half the mistakes decide it."""
    confidences = list(np.linspace(0.999, 0.55, 1000))
    right = [True] * 1000
    for index in (200, 500, 800, 900):
        right[index] = False
    scores, labels = answers_with(confidences, right)
    threshold = calibrated_threshold(scores, labels)
    wrong = scores.argmax(1) != labels
    assert (scores.max(1)[wrong] < threshold).sum() == 2 and threshold > confidences[800]


def test_no_confidence_is_trustworthy_when_the_surest_answers_are_wrong():
    assert calibrated_threshold(*answers_with([0.99, 0.98, 0.5], [False, False, True])) == 1.0


def test_a_run_without_mistakes_records_no_share_of_them_caught(monkeypatch):
    """No wrong answers: "0% of its mistakes not sure" would claim mistakes that went uncaught."""
    scores, labels = answers_with([0.99, 0.9, 0.8], [True, True, True])
    monkeypatch.setattr(calibration, "probabilities", lambda classifier, views: scores)
    assert calibration.calibrate(None, np.zeros((3, 28, 28)), labels)["caught_mistakes"] is None
    assert caught(None) == "no mistakes to doubt" and caught(0.5) == "50% of its mistakes not sure"
    scores, labels = answers_with([0.99, 0.9, 0.8, 0.7], [True, True, True, False])
    assert calibration.calibrate(None, np.zeros((4, 28, 28)), labels)["caught_mistakes"] == 1.0


def test_expected_calibration_error_is_the_gap_between_confidence_and_accuracy():
    honest = answers_with([0.75] * 4, [True, True, True, False])
    overconfident = answers_with([0.99] * 4, [True, True, False, False])
    assert expected_calibration_error(*honest) == pytest.approx(0.0)
    assert expected_calibration_error(*overconfident) == pytest.approx(0.49)


@pytest.fixture
def run_copy(trained_run, tmp_path):
    return shutil.copytree(trained_run, tmp_path / "run")


def test_a_run_never_calibrated_uses_the_fallback(run_copy):
    assert RunDir(run_copy).read_calibration() is None and run_threshold(run_copy) == NOT_SURE_BELOW


@pytest.mark.parametrize("content", ["{not json", "[0.5]", '{"not_sure_below": "high"}', '{"not_sure_below": 2}', "{}"])
def test_a_damaged_calibration_file_is_one_line(run_copy, content):
    RunDir(run_copy).calibration_file.write_text(content)
    with pytest.raises(UserError, match="calibration.json holds no threshold from 0 to 1: run python -m mnist_cnn.cal"):
        run_threshold(run_copy)


@pytest.mark.parametrize(("stored", "verdict"), [(0.0, "sure"), (1.0, "not sure")])
def test_predict_and_serve_answer_by_the_threshold_stored_with_the_run(run_copy, tmp_path, stored, verdict):
    RunDir(run_copy).write_calibration({"not_sure_below": stored})
    image = tmp_path / "zero.png"
    image.write_bytes(encoded(on_uneven_paper(zero())))
    ((_, answer),), _ = predict_files(run_copy, [image])
    assert answer.threshold == stored and answer.verdict == verdict
    ((_, overridden),), _ = predict_files(run_copy, [image], threshold=1.0 - stored)
    assert overridden.verdict != verdict
    served = create_app(run_copy).test_client().post("/predict", data={"image": (image.open("rb"), "zero.png")})
    assert served.get_json()["verdict"] == verdict


def test_calibrate_stores_the_threshold_measured_on_the_tuning_images(run_copy, tiny_mnist, capsys):
    main([f"model={run_copy}", f"data.root={tiny_mnist}", "per_category=2"])
    stored = json.loads((run_copy / "calibration.json").read_text())
    assert set(stored) == {"not_sure_below", "sure_accuracy", "tuning_images", "sure_share", "caught_mistakes", "ece"}
    assert 0 <= stored["not_sure_below"] <= 1 and 0 < stored["tuning_images"] <= 2 * len(CATEGORIES)
    assert run_threshold(run_copy) == stored["not_sure_below"]
    assert capsys.readouterr().out.startswith(f"{run_copy}: 'not sure' below {stored['not_sure_below']:.4f}")


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("per_category=0", "error: per_category=0 is invalid: give a whole number >= 1"),
        ("per_category=2.5", "error: per_category=2.5 is invalid: give a whole number >= 1"),
        ("data.root=/nowhere", "error: data.root=/nowhere: /nowhere/MNIST/raw/t10k-images-idx3-ubyte is missing"),
    ],
)
def test_bad_arguments_are_one_line_errors(run_copy, argument, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([f"model={run_copy}", argument])
    assert stopped.value.code == EXIT_USER_ERROR
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(message)


@pytest.mark.slow
def test_a_threshold_calibrated_on_the_tuning_half_holds_on_the_reporting_half(mnist_model, real_mnist, tmp_path):
    """Calibrated on 30 digits per category of the first half, sure answers on the second half are still right."""
    run = shutil.copytree(mnist_model, tmp_path / "run")
    result = run_command(
        "mnist_cnn.calibrate", f"model={run}", f"data.root={real_mnist}", "per_category=30", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    threshold = run_threshold(run)
    assert 0.5 < threshold < 1
    images, labels = mnist_test(real_mnist, REPORTING)
    views, kept = calibration.category_views(images[:30], labels[:30])
    scores = probabilities(load_classifier(run), views)
    sure = scores.max(1) >= threshold
    assert sure.mean() > 0.5 and (scores.argmax(1) == kept)[sure].mean() >= 0.95


def test_the_tuning_views_come_from_the_first_half_only(tiny_mnist, monkeypatch):
    read = []
    monkeypatch.setattr(calibration, "mnist_test", lambda root, part: read.append(part) or mnist_test(root, part))
    views, labels = calibration.tuning_views(tiny_mnist, 1)
    assert read == [TUNING] and views.shape[1:] == (28, 28) and len(views) == len(labels) <= len(CATEGORIES)


@pytest.mark.parametrize("kind", ["scribble", "printed letter"])
def test_non_digits_are_ink_on_paper_and_the_same_for_the_same_seed(kind):
    from mnist_cnn.wild.categories import non_digits

    images = non_digits(kind, 3)
    for image in images:
        assert image.shape == (112, 112) and image.max() == 1.0  # light paper
        assert 0.01 < (image < 0.5).mean() < 0.5  # some ink, not a black page
    assert not np.array_equal(images[0], images[1])
    assert all(np.array_equal(a, b) for a, b in zip(images, non_digits(kind, 3), strict=True))
