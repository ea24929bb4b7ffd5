"""Label-preserving augmentations applied to whole batches on the training device.

Each takes a normalized batch (N, 1, H, W) and a seeded generator on the batch's device, so
augmented runs stay reproducible and never leave the GPU.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mnist_cnn.errors import UserError

Augmentation = Callable[[Tensor, torch.Generator], Tensor]
AUGMENTATIONS = ("none", "shift", "affine")


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


def build_augmentation(name: str, strength: dict, background: float) -> Augmentation | None:
    """The batch transform for `data.augment`, or None when training on the plain images."""
    if name == "none":
        return None
    if name == "shift":
        return lambda images, generator: random_affine(images, generator, background, strength.get("shift", 2))
    if name == "affine":
        return lambda images, generator: random_affine(
            images,
            generator,
            background,
            shift=strength.get("shift", 2),
            rotate=strength.get("rotate", 10),
            scale=strength.get("scale", 0.1),
        )
    raise UserError(f"data.augment={name} is not known: use one of {', '.join(AUGMENTATIONS)}")
