"""The data sets a run can train on: where their files are, their shape and classes, checked without torch.

Every data set is read from the files torchvision's downloader writes under `data.root` (IDX files
under `<Name>/raw/`, SVHN's MATLAB files and USPS's bzip2'd libsvm text straight in the root), so
an existing torchvision copy works as is. Nothing here depends on the checksums of the full-size
files: a small file in the same format is read like the real one. A missing or damaged file is
refused here, before torch is imported, with one line naming the file and the fix.
"""

from __future__ import annotations

import dataclasses
import math
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnist_cnn.errors import UserError

DIGITS = tuple(string.digits)
MNIST_FILL = 20 / 28  # MNIST scaled each digit into a 20x20 box, centred in 28x28
# the IDX magic number each file-name ending promises (0x08: unsigned bytes, 0x0C: big-endian int32; last byte: rank)
IDX_MAGIC = {"idx3-ubyte": 0x0803, "idx1-ubyte": 0x0801, "idx2-int": 0x0C02}
IDX_ITEM_BYTES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}
TRAIN_AND_TEST = {"train": {"train": True}, "test": {"train": False}}  # torchvision's `train` argument
MAT_HEADER = b"MATLAB 5.0 MAT-file"  # scipy.io.loadmat reads version 5 files, which SVHN's are
BZIP2_HEADER = b"BZh"


@dataclass(frozen=True)
class DataSet:
    """One data set: its files under data.root, what its images look like, and what its labels mean."""

    name: str  # data.name
    folder: str  # under data.root: torchvision's <Name>/raw, or "" where torchvision writes into the root itself
    files: dict[str, tuple[str, ...]]  # split (train, test, extra) -> its images and labels files, or one file of both
    format: str  # idx | svhn_mat | usps_libsvm: which reader in training/readers.py
    downloader: str  # the torchvision.datasets class that fetches it
    download_args: dict[str, dict[str, Any]]  # split -> that class's arguments to fetch it (checksums verified)
    split: str | None = None  # data.split, for a data set that has several (EMNIST)
    channels: int = 1
    size: int = 28
    classes: tuple[str, ...] = DIGITS
    first_label: int = 0  # the label the files give the first class (USPS and EMNIST letters count from 1)
    transposed: bool = False  # EMNIST stores every image transposed
    ink: str = "light"  # light: light ink on a dark background; mixed: either way round, image by image (SVHN)
    fill: float = MNIST_FILL  # the share of the frame a character's box spans
    training_parts: tuple[str, ...] = field(default=("train",))  # the splits training reads (SVHN: + extra)

    @property
    def label(self) -> str:
        return data_label(self.name, self.split)

    def paths(self, root: str | Path, split: str) -> list[Path]:
        return [Path(root) / self.folder / name for name in self.files[split]]

    def model_inputs(self) -> dict[str, int]:
        """The arguments every model takes from the data: input channels, image side, class count."""
        return {"in_channels": self.channels, "image_size": self.size, "num_classes": len(self.classes)}


def data_label(name: str, split: str | None = None) -> str:
    """How results name a data set: `usps`, `emnist_letters` (eval_<label>.json, the sweep summary's data column)."""
    return f"{name}_{split}" if split else name


def mnist_format(name: str, folder: str, classes: tuple[str, ...] = DIGITS) -> DataSet:
    """MNIST and the sets that copy its four files exactly (Fashion-MNIST, KMNIST)."""
    return DataSet(
        name=name,
        folder=f"{folder}/raw",
        files={
            "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        },
        format="idx",
        downloader=folder,
        download_args=TRAIN_AND_TEST,
        classes=classes,
    )


EMNIST_MERGED = set("cijklmopsuvwxyz")  # lower-case letters EMNIST merges with their upper case
EMNIST_CLASSES = {
    "balanced": tuple(sorted(set(string.digits + string.ascii_letters) - EMNIST_MERGED)),
    "byclass": tuple(sorted(string.digits + string.ascii_letters)),
    "bymerge": tuple(sorted(set(string.digits + string.ascii_letters) - EMNIST_MERGED)),
    "digits": DIGITS,
    "letters": tuple(string.ascii_lowercase),
    "mnist": DIGITS,
}


def emnist(split: str) -> DataSet:
    """One EMNIST split: transposed 28x28 IDX files, characters boxed more tightly than MNIST's digits."""
    files = {
        part: (f"emnist-{split}-{part}-images-idx3-ubyte", f"emnist-{split}-{part}-labels-idx1-ubyte")
        for part in ("train", "test")
    }
    return DataSet(
        name="emnist",
        folder="EMNIST/raw",
        files=files,
        format="idx",
        downloader="EMNIST",
        download_args={"train": {"split": split}, "test": {"split": split}},
        split=split,
        classes=EMNIST_CLASSES[split],
        first_label=1 if split == "letters" else 0,
        transposed=True,
        fill=26 / 28,  # each character's box was padded by 2 px of 128 before scaling to 28x28
    )


CATALOGUE = {
    "mnist": mnist_format("mnist", "MNIST"),
    "fashion_mnist": mnist_format(
        "fashion_mnist",
        "FashionMNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
    "kmnist": mnist_format("kmnist", "KMNIST", ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")),
    "qmnist": DataSet(
        name="qmnist",
        folder="QMNIST/raw",
        files={
            "train": ("qmnist-train-images-idx3-ubyte", "qmnist-train-labels-idx2-int"),
            "test": ("qmnist-test-images-idx3-ubyte", "qmnist-test-labels-idx2-int"),  # all 60k test images
        },
        format="idx",
        downloader="QMNIST",
        download_args={"train": {"what": "train"}, "test": {"what": "test"}},
    ),
    "emnist": emnist("balanced"),  # data.split picks another split
    "svhn": DataSet(
        name="svhn",
        folder="",
        files={"train": ("train_32x32.mat",), "test": ("test_32x32.mat",), "extra": ("extra_32x32.mat",)},
        format="svhn_mat",
        downloader="SVHN",
        download_args={split: {"split": split} for split in ("train", "test", "extra")},
        channels=3,
        size=32,
        ink="mixed",
        fill=1.0,  # each digit's box was widened to a square, then scaled to 32x32
    ),
    "usps": DataSet(
        name="usps",
        folder="",
        files={"train": ("usps.bz2",), "test": ("usps.t.bz2",)},
        format="usps_libsvm",
        downloader="USPS",
        download_args=TRAIN_AND_TEST,
        size=16,
        first_label=1,
        fill=1.0,  # deslanted and scaled to fill 16x16
    ),
}


def allowed(key: str, value: object, values: tuple[str, ...] | list[str]) -> UserError:
    """The refusal of a value, worded as the config checks word theirs."""
    return UserError(f"{key}={value} is invalid: allowed values are {' or '.join(values)}")


def describe(data: Mapping[str, Any]) -> DataSet:
    """The data set a `data` config section names (data.name, data.split, data.extra); older runs lack the keys."""
    name = data.get("name") or "mnist"
    if name not in CATALOGUE:
        raise allowed("data.name", name, list(CATALOGUE))
    spec = CATALOGUE[name]
    if spec.split is not None:
        split = data.get("split") or spec.split
        if split not in EMNIST_CLASSES:
            raise allowed("data.split", split, list(EMNIST_CLASSES))
        spec = emnist(split)
    if data.get("extra"):
        if "extra" not in spec.files:
            raise UserError(f"data.extra=true is invalid for data={name}: only svhn has extra training images")
        spec = dataclasses.replace(spec, training_parts=("train", "extra"))
    return spec


def refetch(path: Path) -> str:
    """The fix for a damaged file."""
    return f"delete {path} and run again with data.download=true to fetch a fresh copy"


def check_idx_file(path: Path) -> None:
    """Refuse a truncated or foreign IDX file before a reader fails on it obscurely."""
    magic = next(number for ending, number in IDX_MAGIC.items() if path.name.endswith(ending))
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(4)
        if len(header) < 4 or int.from_bytes(header, "big") != magic:
            raise UserError(f"{path} is not an IDX file (wrong magic number): {refetch(path)}")
        dims = [int.from_bytes(handle.read(4), "big") for _ in range(magic & 0xFF)]
    expected = 4 + 4 * len(dims) + math.prod(dims) * IDX_ITEM_BYTES[magic >> 8]
    if size != expected:
        raise UserError(f"{path} is truncated or corrupt ({size} bytes, header says {expected}): {refetch(path)}")


def check_header(path: Path, header: bytes, kind: str) -> None:
    """Formats without a size in their header: at least the right kind of file (a damaged body fails when read)."""
    with path.open("rb") as handle:
        if handle.read(len(header)) != header:
            raise UserError(f"{path} is not {kind}: {refetch(path)}")


def check_file(path: Path) -> None:
    """What can be checked of a file without reading it all, by its format (told by its name)."""
    if path.suffix == ".mat":
        check_header(path, MAT_HEADER, "a MATLAB 5 .mat file")
    elif path.suffix == ".bz2":
        check_header(path, BZIP2_HEADER, "a bzip2 file")
    else:
        check_idx_file(path)


def needed_splits(spec: DataSet) -> tuple[str, ...]:
    """The splits a run reads: its training parts and the test set."""
    return (*spec.training_parts, "test")


def check_files(spec: DataSet, root: str | Path, download: bool, splits: tuple[str, ...] | None = None) -> None:
    """Refuse the first damaged file, and without data.download the first missing one, naming it and the fix.

    `splits`: those to check (default: what training needs, its training parts and test).
    """
    for split in splits or needed_splits(spec):
        paths = spec.paths(root, split)
        for path in paths:
            if path.is_file():
                check_file(path)
            elif not download:
                raise UserError(
                    f"data.root={root}: {path} is missing and data.download=false: set data.download=true, or point "
                    f"data.root at a folder holding torchvision's {spec.downloader} files"
                )
        if spec.format == "idx" and all(path.is_file() for path in paths):
            check_labels(spec, *paths)


def item_count(path: Path) -> int:
    """The first dimension in an IDX file's header: its number of images or labels."""
    with path.open("rb") as handle:
        return int.from_bytes(handle.read(8)[4:], "big")


def check_labels(spec: DataSet, images: Path, labels: Path) -> None:
    """As many labels as images, each a class of the data set.

    A shorter label file would train on the shorter count, and a label past the last class would
    fail deep inside the loss; both are refused here, with the fix.
    """
    counts = item_count(images), item_count(labels)
    if counts[0] != counts[1]:
        raise UserError(f"{labels} has {counts[1]} labels for {counts[0]} images in {images}: {refetch(labels)}")
    if labels.name.endswith("idx1-ubyte"):
        largest = max(labels.read_bytes()[8:], default=spec.first_label)
        if largest - spec.first_label >= len(spec.classes):
            last = len(spec.classes) - 1 + spec.first_label
            raise UserError(f"{labels} holds the label {largest}, past the last class ({last}): {refetch(labels)}")


def is_complete(spec: DataSet, root: str | Path) -> bool:
    """Every file present and whole (a download in progress elsewhere is not)."""
    try:
        check_files(spec, root, download=False)
    except (UserError, OSError):
        return False
    return True


def train_set_size(spec: DataSet, root: str | Path) -> int | None:
    """Training images, read from the IDX label headers; None where only reading the files would tell."""
    labels = [spec.paths(root, part)[-1] for part in spec.training_parts]
    if spec.format != "idx" or not all(path.is_file() for path in labels):
        return None
    return sum(item_count(path) for path in labels)
