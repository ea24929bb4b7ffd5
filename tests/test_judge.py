"""The judge of whole digits: what it is trained on, how it is built, and that the shipped one tells them apart."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import run_command
from mnist_cnn.errors import EXIT_USER_ERROR, UserError
from mnist_cnn.training.models import FastCNN
from mnist_cnn.wild import judge_training
from mnist_cnn.wild.categories import REPORTING, mnist_test
from mnist_cnn.wild.judge import judge, log_whole
from mnist_cnn.wild.judge_training import examples, is_whole


def test_a_part_is_whole_when_it_holds_one_digit_and_little_of_another():
    truth = np.zeros((2, 10, 20), bool)
    truth[0, :, :10] = True  # the left digit's ink
    truth[1, :, 10:] = True  # the right one's
    assert is_whole(truth[0], truth) and is_whole(truth[1], truth)
    assert not is_whole(truth.any(0), truth)  # both digits: two touching ones
    half = truth[0].copy()
    half[5:] = False
    assert not is_whole(half, truth)  # half a digit: a piece
    with_a_sliver = truth[0].copy()
    with_a_sliver[:, 10] = True  # a tenth of the other digit: still whole
    assert is_whole(with_a_sliver, truth)


def test_a_missing_judge_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"judge\.pt is missing: reinstall mnist_cnn, or rebuild it"):
        judge(tmp_path / "judge.pt")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04 truncated zip"])
def test_a_damaged_judge_is_one_clear_error(tmp_path, content):
    damaged = tmp_path / "judge.pt"
    damaged.write_bytes(content)
    with pytest.raises(UserError, match=r"judge\.pt holds no judge's weights \(.*\): reinstall mnist_cnn"):
        judge(damaged)


def test_a_judge_of_another_shape_is_refused(tmp_path):
    other = tmp_path / "judge.pt"
    torch.save(FastCNN(width=8, num_classes=1).state_dict(), other)
    with pytest.raises(UserError, match="holds no judge's weights"):
        judge(other)


@pytest.mark.parametrize(
    "argument, message",
    [
        ("numbers=5", "numbers=5 is too few: give at least 10 (a tenth is held out)"),
        ("numbers=0", "numbers=0 is invalid: give a whole number >= 1"),
        ("epochs=1.5", "epochs=1.5 is invalid: give a whole number >= 1"),
        ("workers=true", "workers=True is invalid: give a number"),
        ("seed=-1", "seed=-1 is invalid: give a whole number >= 0"),
        ("seed=0.5", "seed=0.5 is invalid: give a whole number >= 0"),
    ],
)
def test_bad_settings_are_refused_in_one_line_before_any_work(tiny_mnist, tmp_path, capsys, argument, message):
    with pytest.raises(SystemExit) as exit_info:
        judge_training.main([f"data.root={tiny_mnist}", argument, f"out={tmp_path / 'judge.pt'}"])
    assert exit_info.value.code == EXIT_USER_ERROR
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not (tmp_path / "judge.pt").exists()


def test_a_missing_data_root_names_the_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        judge_training.main([f"data.root={tmp_path}", f"out={tmp_path / 'judge.pt'}"])
    assert exit_info.value.code == EXIT_USER_ERROR
    assert (
        "train-images-idx3-ubyte is missing: point data.root at the folder holding MNIST/raw" in capsys.readouterr().err
    )


def test_an_unwritable_destination_is_one_clear_error(tiny_mnist, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    for out in (blocker / "judge.pt", tmp_path):  # under a file; a folder
        with pytest.raises(UserError, match="cannot write the judge there"):
            judge_training.build(str(tiny_mnist), count=10, epochs=1, workers=1, seed=0, out=out)


def test_the_judge_is_built_from_composed_numbers_and_loads(tiny_mnist, tmp_path):
    out = tmp_path / "judge.pt"
    accuracy = judge_training.build(str(tiny_mnist), count=10, epochs=1, workers=1, seed=0, out=out)
    assert 0 <= accuracy <= 1
    built = judge(out)
    assert built(torch.zeros(3, 1, 28, 28)).shape == (3, 1)


@pytest.mark.slow
def test_the_shipped_judge_tells_whole_digits_from_pairs_and_pieces_of_test_digits(real_mnist):
    images, _ = mnist_test(real_mnist, REPORTING)  # the judge was trained on training digits only
    rng = np.random.default_rng(3)
    parts = [examples(images[rng.integers(0, len(images), 4)], [3, index]) for index in range(30)]
    views, wholes = np.concatenate([views for views, _ in parts]), np.concatenate([w for _, w in parts])
    judged_whole = log_whole(views) > np.log(0.5)
    assert 0.1 < wholes.mean() < 0.6  # both kinds are there to judge
    assert np.mean(judged_whole[wholes == 1]) >= 0.9
    assert np.mean(~judged_whole[wholes == 0]) >= 0.9


@pytest.mark.slow
def test_the_build_command_has_help_and_refuses_a_bad_value_in_one_line(tmp_path):
    helped = run_command("mnist_cnn.wild.judge_training", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m mnist_cnn.wild.judge_training")
    refused = run_command("mnist_cnn.wild.judge_training", "numbers=0", cwd=tmp_path)
    assert refused.returncode == EXIT_USER_ERROR
    assert refused.stderr.strip() == "error: numbers=0 is invalid: give a whole number >= 1"
