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


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float) -> list[tuple[float, float]]:
    """Points along an ellipse's arc; angles in degrees, clockwise from the right (image rows grow down)."""
    angles = np.radians(np.linspace(start, end, 24))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in angles]


# Pen strokes of each digit in a box 0.6 wide and 1 tall, the way a person writes them.
STROKES = {
    "0": [arc(0.3, 0.5, 0.27, 0.48, 0, 360)],
    "1": [[(0.18, 0.15), (0.36, 0.0), (0.36, 1.0)]],
    "2": [arc(0.3, 0.27, 0.26, 0.26, 190, 380) + [(0.02, 1.0), (0.6, 1.0)]],
    "3": [arc(0.3, 0.26, 0.24, 0.25, 200, 450) + arc(0.3, 0.75, 0.28, 0.25, 270, 520)],
    "4": [[(0.45, 1.0), (0.45, 0.0), (0.0, 0.66), (0.6, 0.66)]],
    "5": [[(0.56, 0.0), (0.12, 0.0), (0.08, 0.44)] + arc(0.3, 0.68, 0.28, 0.3, 235, 520)],
    "6": [[(0.5, 0.0), (0.25, 0.2), (0.08, 0.5)] + arc(0.3, 0.74, 0.25, 0.25, 180, 540)],
    "7": [[(0.0, 0.0), (0.6, 0.0), (0.22, 1.0)]],
    "8": [arc(0.3, 0.25, 0.22, 0.24, 90, 450), arc(0.3, 0.74, 0.27, 0.26, 270, 630)],
    "9": [arc(0.3, 0.28, 0.25, 0.27, 0, 360), [(0.55, 0.28), (0.5, 1.0)]],
}


def written(
    number: str, height: int = 90, pen: int = 7, slant: float = 0.15, seed: int = 0, advance: float = 0.9
) -> Image.Image:
    """White pen strokes of a number on a black canvas, each digit a little shaky, slanted to the right.

    Each digit starts about `advance` heights after the previous one (0.6 or less: they touch).
    """
    rng = np.random.default_rng(seed)
    canvas = Image.new("L", (int(len(number) * 0.95 * height) + 2 * height, 2 * height), 0)
    draw = ImageDraw.Draw(canvas)
    left = height
    for digit in number:
        size = height * rng.uniform(0.9, 1.1)
        top = height / 2 + rng.uniform(-0.08, 0.08) * height
        for stroke in STROKES[digit]:
            points = [
                (left + (x + slant * (1 - y)) * size + rng.normal(0, 0.01 * size), top + y * size) for x, y in stroke
            ]
            draw.line(points, fill=255, width=pen, joint="curve")
            for x, y in (points[0], points[-1]):
                draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)
        left += size * rng.uniform(advance - 0.05, advance + 0.05)
    return canvas
