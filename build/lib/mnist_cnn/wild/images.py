"""Reading untrusted image files into one grayscale array, or a one-line UserError.

Predict, the web app and the real-world benchmark all read images people bring, so every odd
case is handled here once: not an image, empty or truncated files, decompression bombs, 16-bit
samples, transparency, palettes and animations (the first frame is used).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_cnn.errors import UserError

# A 48-megapixel phone photo is the largest we accept; bigger headers are refused before decoding.
MAX_PIXELS = 50_000_000


def corrupt(error: Exception) -> UserError:
    return UserError(f"cannot be decoded ({error}): the file is truncated or corrupt, save it again")


def open_checked(data: bytes) -> Image.Image:
    """Open and fully decode the first frame, refusing oversized or broken files with a clear reason."""
    if not data:
        raise UserError("the file is empty: give an image file (PNG, JPEG, ...)")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError as error:
        raise UserError(f"too large to decode safely: downscale it below {MAX_PIXELS:,} pixels") from error
    except UnidentifiedImageError as error:
        raise UserError("not an image Pillow can read: give a PNG, JPEG, GIF, BMP or WebP file") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise corrupt(error) from error
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise UserError(
            f"{width}x{height} pixels is too large to decode safely: downscale it below {MAX_PIXELS:,} pixels"
        )
    try:
        image.seek(0)
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise corrupt(error) from error
    return image


def grayscale(image: Image.Image) -> np.ndarray:
    """Luminance in [0, 1] as float32; 16-bit samples keep their full range (Pillow would clip them to 8 bits)."""
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I"):
        return (np.asarray(image, dtype=np.float32) / 65535.0).clip(0, 1)
    return flatten_transparency(image.convert("RGBA"))


def flatten_transparency(rgba: Image.Image) -> np.ndarray:
    """Composite onto a backdrop that contrasts with the visible pixels.

    White strokes on a transparent canvas would vanish on white paper, dark ones on black, so the
    backdrop is the opposite of the opaque content's mean brightness.
    """
    pixels = np.asarray(rgba, dtype=np.float32) / 255.0
    luminance = pixels[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    alpha = pixels[..., 3]
    if alpha.min() >= 1.0:
        return luminance
    visible_brightness = float((luminance * alpha).sum() / max(alpha.sum(), 1e-6))
    backdrop = 0.0 if visible_brightness > 0.5 else 1.0
    return luminance * alpha + backdrop * (1 - alpha)


def read_image(source: Path | bytes) -> np.ndarray:
    """A file path or uploaded bytes as a grayscale float array in [0, 1].

    Errors do not name the file (the caller knows what to call it): predict prefixes the path,
    the web app answers about "the upload".
    """
    if isinstance(source, Path):
        try:
            source = source.read_bytes()
        except OSError as error:
            raise UserError(f"cannot be read ({error.strerror}): check the path") from error
    return grayscale(open_checked(source))
