"""One reader per file format torchvision downloads, each giving uint8 images (N, C, H, W) and labels 0..classes-1.

The readers parse the formats themselves rather than through torchvision's dataset classes,
which verify the full-size files' checksums: small files in the same formats (the tests') read
the same way. A file that turns out damaged is refused with one line naming it and the fix.
"""

from __future__ import annotations

import bz2
import math
from pathlib import Path

import numpy as np

from mnist_cnn.errors import UserError, first_line
from mnist_cnn.training.datasets import DataSet, refetch

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}
USPS_SIDE = 16


def read_idx(path: Path) -> np.ndarray:
    """Any IDX array (big-endian on disk) as a native NumPy array of its shape."""
    with path.open("rb") as handle:
        magic = int.from_bytes(handle.read(4), "big")
        dims = [int.from_bytes(handle.read(4), "big") for _ in range(magic & 0xFF)]
    item = np.dtype(IDX_TYPES[magic >> 8]).newbyteorder(">")
    data = np.fromfile(path, dtype=item, count=math.prod(dims), offset=4 + 4 * len(dims))
    return data.reshape(dims).astype(item.newbyteorder("="))


def read_idx_pair(images: Path, labels: Path, transposed: bool) -> tuple[np.ndarray, np.ndarray]:
    """An IDX images file (N, H, W) and its labels (N,), or QMNIST's (N, 8) rows whose first column is the class."""
    pixels, targets = read_idx(images)[:, None], read_idx(labels)
    if transposed:  # EMNIST's files hold each image transposed: turn it upright
        pixels = np.ascontiguousarray(pixels.swapaxes(-1, -2))
    return pixels, targets if targets.ndim == 1 else targets[:, 0]


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SVHN's MATLAB file: X is (32, 32, 3, N) uint8, y is (N, 1) with 10 for the digit 0."""
    from scipy.io import loadmat  # as torchvision's SVHN does; only SVHN needs it

    content = loadmat(path)
    labels = content["y"].astype(np.int64).reshape(-1)
    return np.ascontiguousarray(content["X"].transpose(3, 2, 0, 1)), np.where(labels == 10, 0, labels)


def read_usps_libsvm(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """USPS's bzip2'd libsvm text: `label index:value ...` per image, labels 1-10, values in [-1, 1]."""
    with bz2.open(path, "rt") as handle:
        lines = [line.split() for line in handle if line.strip()]
    pixels = np.zeros((len(lines), USPS_SIDE * USPS_SIDE), dtype=np.float32)  # libsvm leaves out zeros
    for row, words in zip(pixels, lines, strict=True):
        pairs = [word.split(":") for word in words[1:]]
        row[[int(index) - 1 for index, _ in pairs]] = [float(value) for _, value in pairs]
    images = np.round((pixels + 1) * 127.5).astype(np.uint8).reshape(-1, 1, USPS_SIDE, USPS_SIDE)
    return images, np.array([int(float(words[0])) for words in lines], dtype=np.int64)


def read_files(spec: DataSet, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    if spec.format == "idx":
        return read_idx_pair(*paths, transposed=spec.transposed)
    (path,) = paths
    return read_svhn_mat(path) if spec.format == "svhn_mat" else read_usps_libsvm(path)


def read_part(spec: DataSet, root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split's images (N, C, H, W) uint8 and labels (N,) int64 counted from 0, checked against the data set."""
    paths = spec.paths(root, split)
    try:
        images, labels = read_files(spec, paths)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as error:
        raise UserError(f"{paths[0]} is truncated or corrupt ({first_line(error)}): {refetch(paths[0])}") from error
    labels = labels.astype(np.int64) - spec.first_label
    expected = (spec.channels, spec.size, spec.size)
    if images.shape[1:] != expected or len(images) != len(labels):
        raise UserError(
            f"{paths[0]} holds {len(images)} images of {images.shape[1:]} and {len(labels)} labels, not "
            f"{spec.label}'s {expected}: {refetch(paths[0])}"
        )
    if len(labels) and not 0 <= labels.min() <= labels.max() < len(spec.classes):
        raise UserError(
            f"{paths[-1]} holds labels outside {spec.first_label}..{spec.first_label + len(spec.classes) - 1}, "
            f"{spec.label}'s classes: {refetch(paths[-1])}"
        )
    return images, labels
