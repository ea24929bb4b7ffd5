"""Reading untrusted image files into one grayscale array, or a one-line UserError.

Predict, the web app and the real-world benchmark all read images people bring, so every odd
case is handled here once: not an image, empty, truncated or oversized files, decompression bombs,
16-bit samples, transparency, palettes and animations (the first frame is used). Every image is
decoded within a memory budget and read at most READ_SIDE pixels large.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_cnn.errors import UserError

# A 48-megapixel phone photo is the largest we accept; bigger headers are refused before decoding.
MAX_PIXELS = 50_000_000
# The most memory one decoded image may take; a 49-megapixel 1-bit PNG (49 MB) fits, an RGBA one does not.
MAX_DECODED_BYTES = 64 * 2**20
MAX_FILE_BYTES = 50 * 2**20  # a file larger than this is refused unread
READ_SIDE = 1024  # images are read at most this large (preprocessing works at 256 px anyway)
# Bytes per pixel Pillow keeps for each mode (three-band modes are stored in four bytes).
BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}
# Modes Image.reduce cannot shrink, and what they become first (a band at a time, to keep memory flat).
REDUCIBLE_AS = {"1": "L", "P": "RGBA", "I;16": "I", "I;16B": "I", "I;16L": "I"}
BAND_ROWS = 512


def corrupt(error: Exception) -> UserError:
    return UserError(f"cannot be decoded ({error}): the file is truncated or corrupt, save it again")


def open_checked(data: bytes) -> Image.Image:
    """Open and decode the first frame within the memory budget, at most READ_SIDE pixels on its longer side.

    JPEGs are decoded already reduced (DCT scaling); other formats are refused when their decoded
    pixels would pass MAX_DECODED_BYTES, and shrunk right after decoding.
    """
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
    if image.format == "JPEG":
        image.draft(None, (READ_SIDE, READ_SIDE))
    needed = image.size[0] * image.size[1] * BYTES_PER_PIXEL.get(image.mode, 4)
    if needed > MAX_DECODED_BYTES:
        raise UserError(
            f"{width}x{height} {image.mode} pixels would take {needed / 2**20:.0f} MB to decode, over the "
            f"{MAX_DECODED_BYTES // 2**20} MB limit: downscale it or save it as a JPEG"
        )
    try:
        image.seek(0)
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise corrupt(error) from error
    return shrunk(image)


def shrunk(image: Image.Image) -> Image.Image:
    """At most READ_SIDE pixels on the longer side, averaged down with Image.reduce."""
    factor = math.ceil(max(image.size) / READ_SIDE)
    if factor <= 1:
        return image
    if image.mode not in REDUCIBLE_AS:
        return image.reduce(factor)
    width, height = image.size
    reduced = Image.new(REDUCIBLE_AS[image.mode], (math.ceil(width / factor), math.ceil(height / factor)))
    rows = factor * max(1, BAND_ROWS // factor)
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows))).convert(REDUCIBLE_AS[image.mode])
        reduced.paste(band.reduce(factor), (0, top // factor))
    reduced.info = dict(image.info)  # keeps the EXIF orientation
    return reduced


def grayscale(image: Image.Image) -> np.ndarray:
    """Luminance in [0, 1] as float32; 16-bit samples keep their full range (Pillow would clip them to 8 bits)."""
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I"):
        return (np.asarray(image, dtype=np.float32) / 65535.0).clip(0, 1)
    if "A" in image.getbands() or "transparency" in image.info:
        return flatten_transparency(image.convert("RGBA"))
    return (
        np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    )  # the same luminance weights, a quarter of the memory


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
            size = source.stat().st_size
            if size > MAX_FILE_BYTES:
                raise UserError(
                    f"is {size / 2**20:.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit: give a smaller file"
                )
            source = source.read_bytes()
        except OSError as error:
            raise UserError(f"cannot be read ({error.strerror}): check the path") from error
    return grayscale(open_checked(source))
