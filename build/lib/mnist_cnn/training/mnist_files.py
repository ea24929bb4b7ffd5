"""MNIST's four IDX files under a data root, checked without torch so a bad copy is refused at once."""

from __future__ import annotations

import math
from pathlib import Path

from mnist_cnn.errors import UserError

TRAIN_SIZE = 60_000
# file name -> IDX magic number (0x08: unsigned bytes; last byte: the number of dimensions)
RAW_FILES = {
    "train-images-idx3-ubyte": 0x0803,
    "train-labels-idx1-ubyte": 0x0801,
    "t10k-images-idx3-ubyte": 0x0803,
    "t10k-labels-idx1-ubyte": 0x0801,
}


def raw_dir(root: str | Path) -> Path:
    """Where torchvision keeps the uncompressed IDX files under a data root."""
    return Path(root) / "MNIST" / "raw"


def has_mnist(root: str | Path) -> bool:
    """True when all four IDX files are present, so no download is needed."""
    return all((raw_dir(root) / name).is_file() for name in RAW_FILES)


def item_count(path: Path) -> int:
    """The first dimension in an IDX file's header: its number of images or labels."""
    with path.open("rb") as handle:
        return int.from_bytes(handle.read(8)[4:], "big")


def train_set_size(root: str | Path) -> int:
    """Images in the official training set: read from the IDX header when present."""
    labels = raw_dir(root) / "train-labels-idx1-ubyte"
    return item_count(labels) if labels.is_file() else TRAIN_SIZE


def fix_for(path: Path) -> str:
    return f"delete {path} and run again with data.download=true to fetch a fresh copy"


def check_idx_file(path: Path, magic: int) -> None:
    """Refuse a truncated or foreign IDX file before torchvision fails on it obscurely."""
    fix = fix_for(path)
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(4)
        if len(header) < 4 or int.from_bytes(header, "big") != magic:
            raise UserError(f"{path} is not an MNIST IDX file (wrong magic number): {fix}")
        dims = [int.from_bytes(handle.read(4), "big") for _ in range(magic & 0xFF)]
    expected = 4 + 4 * len(dims) + math.prod(dims)
    if size != expected:
        raise UserError(f"{path} is truncated or corrupt ({size} bytes, header says {expected}): {fix}")


def check_raw_files(root: str | Path) -> None:
    """Refuse the first truncated, foreign or mismatched IDX file under root, naming it and the fix.

    A label file shorter than its images would train on the shorter count, and a label above 9
    would fail deep inside the loss, so both are refused here too.
    """
    for name, magic in RAW_FILES.items():
        check_idx_file(raw_dir(root) / name, magic)
    for split in ("train", "t10k"):
        images, labels = (raw_dir(root) / f"{split}-{kind}" for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"))
        counts = [item_count(path) for path in (images, labels)]
        if counts[0] != counts[1]:
            raise UserError(f"{labels} has {counts[1]} labels for {counts[0]} images in {images}: {fix_for(labels)}")
        largest = max(labels.read_bytes()[8:], default=0)
        if largest > 9:
            raise UserError(f"{labels} holds the label {largest}, but MNIST's are 0-9: {fix_for(labels)}")


def is_complete(root: str | Path) -> bool:
    """All four IDX files present and whole (a download in progress elsewhere is not)."""
    try:
        check_raw_files(root)
    except (UserError, OSError):
        return False
    return True
