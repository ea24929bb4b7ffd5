"""Batch augmentations: they keep labels and shapes, stay within the pixel range, and repeat per seed."""

from __future__ import annotations

import pytest
import torch

from mnist_cnn.errors import UserError
from mnist_cnn.training.augment import AUGMENTATIONS, build_augmentation, random_blur, random_low_resolution
from mnist_cnn.training.data import ResidentLoader, ShardedPermutation

BACKGROUND = -0.42
STRENGTH = {"shift": 3, "rotate": 15, "scale": 0.15}
MOVING = [name for name in AUGMENTATIONS if name != "none"]
GEOMETRIC = ["shift", "affine"]  # wild also adds noise and blur, so its background is not exact


def centred_blobs(count: int = 16) -> torch.Tensor:
    """Background images with a bright 10x10 square in the middle, the brightest value 2.8."""
    images = torch.full((count, 1, 28, 28), BACKGROUND)
    images[:, :, 9:19, 9:19] = 2.8
    return images


def augment(name: str, images: torch.Tensor, seed: int) -> torch.Tensor:
    return build_augmentation(name, STRENGTH, BACKGROUND)(images, torch.Generator().manual_seed(seed))


def test_none_means_no_transform():
    assert build_augmentation("none", STRENGTH, BACKGROUND) is None


def test_unknown_augmentation_is_a_user_error():
    with pytest.raises(UserError, match="data.augment=flip"):
        build_augmentation("flip", STRENGTH, BACKGROUND)


@pytest.mark.parametrize("name", GEOMETRIC)
def test_shapes_kept_and_a_centred_digit_stays_in_frame(name):
    images = centred_blobs()
    moved = augment(name, images, seed=0)
    assert moved.shape == images.shape and moved.dtype == images.dtype
    assert not torch.equal(moved, images)
    border = torch.ones(28, 28, dtype=torch.bool)
    border[2:26, 2:26] = False
    assert torch.allclose(moved[..., border], torch.tensor(BACKGROUND), atol=1e-4)  # nothing pushed out
    ink = (moved - BACKGROUND).sum(dim=(1, 2, 3)) / (images - BACKGROUND).sum(dim=(1, 2, 3))
    assert torch.all((ink > 0.6) & (ink < 1.5))  # zoom changes the area, never loses the digit


@pytest.mark.parametrize("name", MOVING)
def test_values_stay_within_background_and_brightest_pixel(name):
    moved = augment(name, centred_blobs(), seed=1)
    assert moved.min().item() >= BACKGROUND - 1e-5
    assert moved.max().item() <= 2.8 + 1e-5


@pytest.mark.parametrize("name", MOVING)
def test_same_seed_same_output_other_seed_other_output(name):
    images = centred_blobs()
    assert torch.equal(augment(name, images, seed=5), augment(name, images, seed=5))
    assert not torch.equal(augment(name, images, seed=5), augment(name, images, seed=6))


@pytest.mark.parametrize("name", MOVING)
def test_augmented_loader_keeps_labels_with_their_images(name):
    images, labels = centred_blobs(40), torch.arange(40)
    sampler = ShardedPermutation(40, 8, shuffle=True, seed=0)
    plain = list(ResidentLoader(images, labels, sampler))
    augmented = list(ResidentLoader(images, labels, sampler, build_augmentation(name, STRENGTH, BACKGROUND)))
    assert [batch_labels.tolist() for _, batch_labels in augmented] == [
        batch_labels.tolist() for _, batch_labels in plain
    ]
    assert all(moved.shape == batch.shape for (moved, _), (batch, _) in zip(augmented, plain, strict=True))


def test_blur_spreads_a_point_and_keeps_its_ink():
    """A Gaussian blur per image: at sigma 0 nothing changes, wider ones spread a point, none loses ink."""
    point = torch.zeros(64, 1, 28, 28)
    point[:, :, 14, 14] = 1.0
    blurred = random_blur(point, torch.Generator().manual_seed(0), sigma=2.0)
    assert torch.allclose(blurred.sum(dim=(1, 2, 3)), torch.ones(64), atol=1e-4)
    peaks = blurred.amax(dim=(1, 2, 3))
    assert peaks.min() < 0.1 and peaks.max() > 0.5  # each image drew its own sigma
    assert torch.equal(random_blur(point, torch.Generator().manual_seed(0), sigma=0.0), point)


def test_low_resolution_loses_detail_but_not_the_digit():
    images = centred_blobs(32)
    images[:, :, 12:16, 12:16] = BACKGROUND  # a hole only a sharp image shows
    low = random_low_resolution(images, torch.Generator().manual_seed(0), probability=1.0, smallest=8)
    assert not torch.equal(low, images)
    assert torch.allclose((low - BACKGROUND).mean(), (images - BACKGROUND).mean(), rtol=0.05)
    assert (low[:, :, 14, 14] > BACKGROUND + 0.5).all()  # the hole is blurred over
    untouched = random_low_resolution(images, torch.Generator().manual_seed(0), probability=0.0, smallest=8)
    assert torch.equal(untouched, images)
