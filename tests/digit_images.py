"""Synthetic photos of a digit for the image tests: drawn with Pillow, saved in any format."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def zero(
    size: tuple[int, int] = (200, 150), at: tuple[int, int] = (20, 20), scale: float = 1.0, width: int = 6
) -> Image.Image:
    """A white "0" (an ellipse 60 wide and 90 tall, times `scale`) with its corner `at`, on a black canvas."""
    image = Image.new("L", size, 0)
    left, top = at
    ImageDraw.Draw(image).ellipse((left, top, left + 60 * scale, top + 90 * scale), outline=255, width=width)
    return image


def on_uneven_paper(ink: Image.Image, seed: int = 0) -> Image.Image:
    """Dark ink on bright paper lit from one side, with grain: what a phone photo looks like."""
    height, width = ink.height, ink.width
    light = np.linspace(0.95, 0.6, width)[None, :] * np.linspace(1.0, 0.85, height)[:, None]
    grain = np.random.default_rng(seed).normal(0, 0.02, (height, width))
    paper = light + grain - 0.5 * np.asarray(ink, dtype=np.float64) / 255
    return Image.fromarray((np.clip(paper, 0, 1) * 255).astype(np.uint8))


def encoded(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()
