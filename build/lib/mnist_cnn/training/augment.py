"""Label-preserving augmentations applied to whole batches on the training device.

Each takes a normalized batch (N, 1, H, W) and a seeded generator on the batch's device, so
augmented runs stay reproducible and never leave the GPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mnist_cnn.errors import UserError
from mnist_cnn.training.choices import AUGMENTATIONS

Augmentation = Callable[[Tensor, torch.Generator], Tensor]


def uniform(n: int, limit: float, like: Tensor, generator: torch.Generator) -> Tensor:
    """n samples from U(-limit, limit) on the batch's device."""
    return (torch.rand(n, device=like.device, generator=generator) * 2 - 1) * limit


def random_affine(
    images: Tensor,
    generator: torch.Generator,
    background: float,
    shift: float,
    rotate: float = 0.0,
    scale: float = 0.0,
) -> Tensor:
    """Translate by up to `shift` pixels, rotate by up to `rotate` degrees, zoom by up to `scale`.

    Sampling is done on (image - background) with zero padding, so revealed borders get the
    true background value rather than a smeared edge.
    """
    n, _, height, width = images.shape
    angle = uniform(n, math.radians(rotate), images, generator)
    zoom = 1 + uniform(n, scale, images, generator)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    dx = uniform(n, 2 * shift / width, images, generator)
    dy = uniform(n, 2 * shift / height, images, generator)
    theta = torch.stack([torch.stack([cos, -sin, dx], 1), torch.stack([sin, cos, dy], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = F.grid_sample(images - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return moved + background


def configured_affine(images: Tensor, generator: torch.Generator, background: float, strength: dict) -> Tensor:
    """random_affine with data.augment_strength's shift, rotate and scale."""
    return random_affine(
        images,
        generator,
        background,
        shift=strength.get("shift", 2),
        rotate=strength.get("rotate", 10),
        scale=strength.get("scale", 0.1),
    )


def per_image(n: int, like: Tensor, generator: torch.Generator) -> Tensor:
    """n samples from U(0, 1) shaped to broadcast over (N, 1, H, W)."""
    return torch.rand(n, 1, 1, 1, device=like.device, generator=generator)


def random_thickness(images: Tensor, generator: torch.Generator, probability: float) -> Tensor:
    """Thicken (3x3 max-pool dilation) or thin strokes, each with `probability`.

    Pens, markers and app brushes draw much wider or narrower strokes than MNIST's. A full 3x3
    erosion would erase MNIST's 2-pixel strokes, so thinning goes halfway towards it.
    """
    draw = per_image(len(images), images, generator)
    thicker = F.max_pool2d(images, 3, stride=1, padding=1)
    thinner = (images - F.max_pool2d(-images, 3, stride=1, padding=1)) / 2
    return torch.where(draw < probability, thicker, torch.where(draw > 1 - probability, thinner, images))


def random_blur(images: Tensor, generator: torch.Generator, amount: float) -> Tensor:
    """Mix each image with its 3x3 Gaussian blur by up to `amount`: out-of-focus phone photos."""
    kernel = torch.tensor([1.0, 2.0, 1.0], device=images.device)
    kernel = (kernel[:, None] * kernel[None, :] / 16).expand(1, 1, 3, 3)
    blurred = F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel)
    weight = per_image(len(images), images, generator) * amount
    return images + weight * (blurred - images)


def random_contrast_and_noise(
    images: Tensor, generator: torch.Generator, background: float, contrast: float, noise: float
) -> Tensor:
    """Fade the ink by up to `contrast` and add Gaussian noise of up to `noise` times the ink's contrast.

    Faint ballpoint and grainy photos; both are relative to each image's own ink level. The result
    is clamped to the batch's valid pixel range: real pixels are never darker than the background.
    """
    ink = images - background
    faded = ink * (1 - per_image(len(images), images, generator) * contrast)
    peak = faded.amax(dim=(1, 2, 3), keepdim=True)
    sigma = per_image(len(images), images, generator) * noise * peak
    grain = torch.randn(images.shape, device=images.device, generator=generator) * sigma
    return torch.minimum((faded + grain).clamp(min=0), ink.amax()) + background


def wild(images: Tensor, generator: torch.Generator, background: float, strength: dict) -> Tensor:
    """What preprocessing of real images cannot normalize: stroke width, slant, focus, faint ink, grain."""
    images = random_thickness(images, generator, strength.get("thickness", 0.3))
    images = configured_affine(images, generator, background, strength)
    images = random_blur(images, generator, strength.get("blur", 0.8))
    return random_contrast_and_noise(
        images, generator, background, strength.get("contrast", 0.5), strength.get("noise", 0.1)
    )


def build_augmentation(name: str, strength: dict, background: float) -> Augmentation | None:
    """The batch transform for `data.augment`, or None when training on the plain images."""
    if name == "none":
        return None
    if name == "shift":
        return lambda images, generator: random_affine(images, generator, background, strength.get("shift", 2))
    if name == "affine":
        return lambda images, generator: configured_affine(images, generator, background, strength)
    if name == "wild":
        return lambda images, generator: wild(images, generator, background, strength)
    raise UserError(f"data.augment={name} is not known: use one of {', '.join(AUGMENTATIONS)}")
