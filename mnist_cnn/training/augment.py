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
LOWEST_RESOLUTION = 8  # px of the 28 px frame: a 20 px digit shrinks to about 6 px, still readable by eye


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


def gaussian_kernels(sigmas: Tensor, radius: int) -> Tensor:
    """One normalized (2 * radius + 1)^2 Gaussian kernel per sigma, shaped (N, 1, k, k) for a grouped convolution."""
    offsets = torch.arange(-radius, radius + 1, device=sigmas.device, dtype=sigmas.dtype)
    profile = torch.exp(-(offsets[None, :] ** 2) / (2 * sigmas[:, None].clamp(min=1e-3) ** 2))
    profile = profile / profile.sum(1, keepdim=True)
    return (profile[:, :, None] * profile[:, None, :]).unsqueeze(1)


def random_blur(images: Tensor, generator: torch.Generator, sigma: float) -> Tensor:
    """A Gaussian blur of up to `sigma` pixels, drawn per image: out-of-focus photos and enlarged scans."""
    n, channels, height, width = images.shape
    radius = max(1, math.ceil(2 * sigma))
    kernels = gaussian_kernels(per_image(n, images, generator).flatten() * sigma, radius)
    padded = F.pad(images.reshape(1, n * channels, height, width), (radius,) * 4, mode="replicate")
    return F.conv2d(padded, kernels.repeat_interleave(channels, 0), groups=n * channels).reshape(images.shape)


def random_low_resolution(images: Tensor, generator: torch.Generator, probability: float, smallest: int) -> Tensor:
    """Shrink to between `smallest` and half the side and enlarge back bilinearly, each image with `probability`.

    A digit cropped small from a photo or a scan, then enlarged. One side per batch, so the whole
    batch is resized at once.
    """
    height, width = images.shape[-2:]
    side = int(torch.randint(smallest, height // 2 + 1, (1,), device=images.device, generator=generator))
    small = F.interpolate(images, size=(side, side * width // height), mode="bilinear", antialias=True)
    enlarged = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
    chosen = per_image(len(images), images, generator) < probability
    return torch.where(chosen, enlarged, images)


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
    """What preprocessing of real images cannot normalize: stroke width, slant, resolution, focus, faint ink, grain."""
    images = random_thickness(images, generator, strength.get("thickness", 0.3))
    images = configured_affine(images, generator, background, strength)
    images = random_low_resolution(images, generator, strength.get("low_resolution", 0.25), LOWEST_RESOLUTION)
    images = random_blur(images, generator, strength.get("blur", 1.0))
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
