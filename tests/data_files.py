"""Small learnable data sets written in each real file format, as torchvision's downloader lays them out.

IDX (EMNIST's transposed, QMNIST's int32 label rows), SVHN's MATLAB 5 `.mat` with 10 for the digit
0, USPS's bzip2'd libsvm text with labels 1-10 and values in [-1, 1]: the readers must not tell
these from the full-size downloads.
"""

from __future__ import annotations

import bz2
import math
from pathlib import Path

import numpy as np

from mnist_cnn.training.datasets import DataSet, describe

IDX_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file: magic (zero, zero, element type, rank), big-endian dims, big-endian data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, IDX_TYPE_CODES[array.dtype], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(array.dtype.newbyteorder(">")).tobytes())


def learnable(count: int, seed: int, spec: DataSet) -> tuple[np.ndarray, np.ndarray]:
    """Upright images (N, C, S, S), labels 0..classes-1: class k is a bright block in cell k of a grid, plus noise."""
    rng = np.random.default_rng(seed)
    classes, side = len(spec.classes), spec.size
    grid = math.ceil(math.sqrt(classes))
    cell = side // grid
    labels = rng.integers(0, classes, size=count)
    images = rng.integers(0, 40, size=(count, spec.channels, side, side))
    for image, label in zip(images, labels, strict=True):
        row, col = cell * (label // grid), cell * (label % grid)
        image[:, row : row + cell - 1, col : col + cell - 1] = 255
    return images.astype(np.uint8), labels


def write_split(spec: DataSet, root: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Write upright uint8 images (N, C, S, S) and labels 0..classes-1 as the data set's files store them."""
    paths = spec.paths(root, split)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    stored = labels + spec.first_label
    if spec.format == "idx":
        pixels = images[:, 0].swapaxes(1, 2) if spec.transposed else images[:, 0]
        write_idx(paths[0], np.ascontiguousarray(pixels))
        if paths[1].name.endswith("idx2-int"):  # QMNIST: eight int32 columns per image, the class first
            rows = np.zeros((len(labels), 8), np.int32)
            rows[:, 0] = stored
            write_idx(paths[1], rows)
        else:
            write_idx(paths[1], stored.astype(np.uint8))
    elif spec.format == "svhn_mat":
        from scipy.io import savemat

        savemat(paths[0], {"X": images.transpose(2, 3, 1, 0), "y": np.where(stored == 0, 10, stored)[:, None]})
    else:
        values = images.reshape(len(images), -1) / 127.5 - 1
        pixels = (" ".join(f"{index + 1}:{value:.6f}" for index, value in enumerate(row)) for row in values)
        lines = "".join(f"{label} {row}\n" for label, row in zip(stored, pixels, strict=True))
        paths[0].write_bytes(bz2.compress(lines.encode()))


def make_data_root(root: Path, name: str = "mnist", train: int = 600, test: int = 200, **data: object) -> Path:
    """A data root holding one data set's files with `train` training and `test` test images (its extra: `train`)."""
    spec = describe({"name": name, **data})
    for split, count, seed in (("train", train, 0), ("test", test, 1), ("extra", train, 2)):
        if split in spec.files:
            write_split(spec, root, split, *learnable(count, seed, spec))
    return root
