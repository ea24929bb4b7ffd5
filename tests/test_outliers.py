"""Outlier exposure: non-digits made from a batch's digits, their loss, and a run trained with them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import quick_overrides, train_in_process
from mnist_cnn.training.data import ResidentLoader, ShardedPermutation
from mnist_cnn.training.outliers import OUTLIER, digit_and_outlier_losses, quarters_moved_round, with_outliers
from mnist_cnn.wild.categories import mnist_test
from mnist_cnn.wild.classifier import load_classifier

BACKGROUND = -0.42


def numbered_images(count: int) -> torch.Tensor:
    """Images whose pixels are all different, so any moved quarter shows."""
    return torch.arange(count * 28 * 28, dtype=torch.float32).reshape(count, 1, 28, 28)


def test_quarters_move_round_and_never_stay_where_they_were():
    images = numbered_images(64)
    moved = quarters_moved_round(images, torch.Generator().manual_seed(0))
    for before, after in zip(images, moved, strict=True):
        quarters = [before[:, :14, :14], before[:, :14, 14:], before[:, 14:, :14], before[:, 14:, 14:]]
        now = [after[:, :14, :14], after[:, :14, 14:], after[:, 14:, :14], after[:, 14:, 14:]]
        assert not torch.equal(now[0], quarters[0])  # moved, and the four are the same four
        assert sorted(q.sum().item() for q in now) == sorted(q.sum().item() for q in quarters)
    odd = quarters_moved_round(torch.rand(4, 3, 15, 15), torch.Generator().manual_seed(0))
    assert odd.shape == (4, 3, 15, 15)  # an odd side keeps its last row and column


def test_a_batch_gains_its_share_of_non_digits_made_from_its_own_digits():
    images = torch.full((40, 1, 28, 28), BACKGROUND)
    labels = torch.arange(40) % 10
    for row, label in enumerate(labels):
        images[row, :, 4 + label : 10 + label, 6:20] = 2.8  # a bar whose height tells the class
    more, more_labels = with_outliers(images, labels, 0.25, torch.Generator().manual_seed(1))
    assert more.shape == (50, 1, 28, 28) and torch.equal(more[:40], images) and torch.equal(more_labels[:40], labels)
    assert (more_labels[40:] == OUTLIER).all()
    made = more[40:]
    assert all(not any(torch.equal(image, digit) for digit in images) for image in made)  # none is a digit as it was
    assert made.min() >= BACKGROUND and made.max() <= 2.8
    assert with_outliers(images, labels, 0.0, torch.Generator())[0] is images
    again = with_outliers(images, labels, 0.25, torch.Generator().manual_seed(1))[0]
    assert torch.equal(again, more)  # reproducible from the loader's seeded generator


@pytest.mark.parametrize("label, turned_expected", [(7, True), (8, False)])
def test_only_digits_that_change_are_mirrored_or_turned(label, turned_expected):
    images = numbered_images(40)
    made = with_outliers(images, torch.full((40,), label), 0.5, torch.Generator().manual_seed(2))[0][40:]
    changed = [torch.cat([digit.flip(-1)[None], digit.rot90(1, (-2, -1))[None]]) for digit in images]
    turned = [any(torch.equal(image, view) for views in changed for view in views) for image in made]
    assert any(turned) == turned_expected  # a mirrored or turned 8 (or 0, 1) is still a digit
    assert not all(turned)  # the other kinds are there too


def test_non_digits_are_pushed_to_every_class_equally_likely_and_digits_to_their_label():
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 1.0, 1.0], [5.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2, OUTLIER, OUTLIER])
    digit, outlier = digit_and_outlier_losses(logits, labels)
    assert torch.allclose(digit[:2], F.cross_entropy(logits[:2], labels[:2], reduction="none"))
    assert (digit[2:] == 0).all() and (outlier[:2] == 0).all()
    assert outlier[2] == pytest.approx(0.0, abs=1e-6)  # already uniform
    expected = -F.log_softmax(logits[3], dim=0).mean() - math.log(3)  # KL(uniform || p)
    assert outlier[3] == pytest.approx(expected.item()) and outlier[3] > 1


def test_the_training_loader_adds_non_digits_and_evaluation_never_does():
    images, labels = numbered_images(40), torch.arange(40) % 10
    sampler = ShardedPermutation(40, 8, shuffle=True, seed=0)
    batches = list(ResidentLoader(images, labels, sampler, outliers=0.25))
    assert all(len(batch) == 10 and (batch_labels[8:] == OUTLIER).all() for batch, batch_labels in batches)
    assert all((batch_labels >= 0).all() for _, batch_labels in ResidentLoader(images, labels, sampler))


def mean_confidence(run_dir: Path, pixels: torch.Tensor) -> float:
    with torch.no_grad():
        return load_classifier(run_dir)(pixels).amax(dim=1).mean().item()


@pytest.mark.slow
def test_a_run_with_outliers_counts_only_digits_in_its_accuracy(tiny_mnist, tmp_path):
    run_dir = train_in_process(tmp_path / "run", *quick_overrides(tiny_mnist, "data.outliers=0.5"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    plain_run = train_in_process(tmp_path / "plain", *quick_overrides(tiny_mnist))
    untouched = json.loads((plain_run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["train/loss"] >= 0
    assert metrics["train/acc"] > untouched["train/acc"] - 0.1  # a third of the batch is no digit, and not counted


@pytest.mark.slow
def test_trained_with_outliers_mnist_digits_stay_sure_and_non_digits_do_not(real_mnist, tmp_path):
    limits = ["data.batch_size=128", "+trainer.limit_train_batches=150", "+trainer.limit_val_batches=4"]
    overrides = [f"data.root={real_mnist}", "data.download=false", "trainer.max_epochs=1", *limits]
    overrides += ["+trainer.limit_test_batches=4"]
    exposed = train_in_process(tmp_path / "exposed", *overrides, "data.outliers=0.25")
    plain = train_in_process(tmp_path / "plain", *overrides)
    digits = torch.from_numpy(mnist_test(real_mnist, slice(0, 500))[0]).unsqueeze(1)
    non_digits = quarters_moved_round(digits, torch.Generator().manual_seed(0))
    sure_of_digits = mean_confidence(exposed, digits), mean_confidence(plain, digits)
    sure_of_non_digits = mean_confidence(exposed, non_digits), mean_confidence(plain, non_digits)
    assert sure_of_digits[0] > sure_of_digits[1] - 0.1  # after 150 steps; the gap narrows with training
    assert sure_of_non_digits[0] < sure_of_non_digits[1] - 0.2
