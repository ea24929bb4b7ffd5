"""Every data set as one normalized tensor on the training device, batched by slicing.

torchvision's per-sample PIL path delivers a few thousand images/s on a laptop CPU; slicing a
preloaded tensor delivers over a million. So each data set is read once (by the reader of its file
format, training/readers.py; torchvision keeps the real download path), normalized once, moved to
the device once, and every batch is a slice taken by a seeded per-epoch permutation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torchvision.datasets
from filelock import FileLock
from torch import Tensor

from mnist_cnn.errors import UserError, last_line
from mnist_cnn.training.augment import build_augmentation
from mnist_cnn.training.checks import check_val_size
from mnist_cnn.training.datasets import DataSet, check_files, describe, is_complete, needed_splits
from mnist_cnn.training.outliers import with_outliers
from mnist_cnn.training.readers import read_part

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
Statistic = float | list[float]  # one value, or one per channel
STATISTICS_CHUNK = 8192  # images summed at a time: SVHN with its extra images would be 25 GB as one float64 tensor


def download_once(spec: DataSet, root: str | Path) -> None:
    """Fetch the data set into root unless it is there; a file lock lets parallel sweep jobs share one download.

    A failed download (no network, a proxy, a full disk) is one line with the way to put the files in place.
    """
    if is_complete(spec, root):
        return
    folder = Path(root) / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / f"download_{spec.name}.lock"):
        fetch = getattr(torchvision.datasets, spec.downloader)
        for split in needed_splits(spec):
            if not all(path.is_file() for path in spec.paths(root, split)):
                try:
                    fetch(str(root), download=True, **spec.download_args[split])
                except (RuntimeError, OSError) as error:
                    raise UserError(download_failed(spec, root, split, error)) from error


def download_failed(spec: DataSet, root: str | Path, split: str, error: BaseException) -> str:
    """The cause, the files to put in place by hand and where, or the way around the download."""
    mirrors = getattr(getattr(torchvision.datasets, spec.downloader), "mirrors", None)
    source = f" from {mirrors[0]}" if mirrors else ""
    names = ", ".join(path.name for part in needed_splits(spec) for path in spec.paths(root, part))
    return (
        f"could not download {spec.label} into {Path(root) / spec.folder} ({last_line(error)}): put {names} "
        f"there{source} (torchvision's {spec.downloader} layout; .gz files are unpacked there) and run again, or "
        f"point data.root at an existing copy with data.download=false"
    )


def load_split(spec: DataSet, root: str | Path, split: str) -> tuple[Tensor, Tensor]:
    """uint8 images (N, C, H, W) and int64 labels of the official `train` (with SVHN's extra) or `test` split."""
    names = spec.training_parts if split == "train" else (split,)
    check_files(spec, root, download=False, splits=names)
    parts = [read_part(spec, root, name) for name in names]
    images, labels = (np.concatenate(arrays) if len(parts) > 1 else arrays[0] for arrays in zip(*parts, strict=True))
    return torch.from_numpy(images), torch.from_numpy(labels)


def per_channel(value: Statistic) -> float | Tensor:
    """A scalar stays a Python float (MNIST's arithmetic as ever); a list becomes a (C, 1, 1) tensor."""
    return torch.tensor(list(value)).view(-1, 1, 1) if isinstance(value, Sequence) else float(value)


def to_unit(images: Tensor) -> Tensor:
    """uint8 pixels as floats in [0, 1]."""
    return images.float().div_(255.0)


def standardize(pixels: Tensor, mean: Statistic, std: Statistic) -> Tensor:
    """[0, 1] pixels (N, C, H, W) standardized per channel, in place."""
    # In place: each temporary of the 55k training images is a fresh 170 MB to page in.
    return pixels.sub_(per_channel(mean)).div_(per_channel(std)).contiguous()


def normalize(images: Tensor, mean: Statistic, std: Statistic) -> Tensor:
    """uint8 (N, C, H, W) to float, scaled to [0, 1] then standardized per channel."""
    return standardize(to_unit(images), mean, std)


def channel_statistics(images: Tensor) -> tuple[Statistic, Statistic]:
    """Mean and standard deviation of [0, 1] pixels per channel, to 4 decimals; one float for grayscale."""
    totals = torch.zeros(2, images.shape[1], dtype=torch.float64)
    for chunk in images.split(STATISTICS_CHUNK):
        pixels = chunk.double().div_(255.0).transpose(0, 1).flatten(1)
        totals += torch.stack((pixels.sum(1), pixels.square().sum(1)))
    count = images.numel() / images.shape[1]
    mean = totals[0] / count
    std = (totals[1] / count - mean.square()).clamp(min=0).sqrt()
    rounded = [[round(value, 4) for value in values.tolist()] for values in (mean, std)]
    return tuple(values[0] if len(values) == 1 else values for values in rounded)


class ShardedPermutation:
    """Which rows each batch takes: a seeded order per epoch, one disjoint shard per rank.

    Every rank gets the same number of batches (DDP needs that), the shards together cover the
    whole epoch exactly once, and batch sizes differ by at most one row instead of leaving a
    tiny last batch.
    """

    def __init__(self, num_rows: int, batch_size: int, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1):
        self.num_rows, self.batch_size, self.shuffle = num_rows, batch_size, shuffle
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this before every epoch, so resumed runs see the same orders."""
        self.epoch = epoch

    def __len__(self) -> int:
        return max(1, math.ceil(math.ceil(self.num_rows / self.world_size) / self.batch_size))

    def batches(self) -> tuple[Tensor, ...]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.num_rows, generator=generator)
        else:
            order = torch.arange(self.num_rows)
        shard = order[self.rank :: self.world_size]
        return torch.tensor_split(shard, len(self))


class ResidentLoader:
    """An iterable of (images, labels) batches sliced from tensors already on the device.

    It exposes ``sampler`` so Lightning's per-epoch ``set_epoch`` call reaches the permutation,
    and ``batch_sampler = None`` because Lightning inspects both attributes when they exist.
    """

    batch_sampler = None

    def __init__(
        self, images: Tensor, labels: Tensor, sampler: ShardedPermutation, augment=None, outliers: float = 0.0
    ):
        self.images, self.labels, self.sampler, self.augment = images, labels, sampler, augment
        self.outliers = outliers  # the share of each batch added as non-digits (training/outliers.py)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        generator = None
        if self.augment is not None or self.outliers:
            generator = torch.Generator(device=self.images.device)
            generator.manual_seed((self.sampler.seed * 100_003 + self.sampler.epoch) * 64 + self.sampler.rank)
        for rows in self.sampler.batches():
            rows = rows.to(self.images.device, non_blocking=True)
            # index_select rather than `self.images[rows]`: faster (benchmarks/data_throughput.py)
            images = self.images.index_select(0, rows)
            labels = self.labels.index_select(0, rows)
            if self.augment is not None:
                images = self.augment(images, generator)
            if self.outliers:
                images, labels = with_outliers(images, labels, self.outliers, generator)
            yield images, labels


class ImageDataModule(pl.LightningDataModule):
    """Any data set of the catalogue: a seeded train/validation split of its training set, its official test set.

    `name`, `split` and `extra` pick the data set (training/datasets.py); the model's input shape
    and class count follow from it. `mean`/`std` null: measured on the training images by
    `normalization()`, which the recipe records in the run's config.
    """

    def __init__(
        self,
        root: str,
        name: str = "mnist",
        split: str | None = None,
        extra: bool = False,
        download: bool = True,
        batch_size: int = 64,
        eval_batch_size: int = 250,
        val_size: int = 5000,
        mean: Statistic | None = MNIST_MEAN,
        std: Statistic | None = MNIST_STD,
        augment: str = "none",
        augment_strength: dict | None = None,
        outliers: float = 0.0,
        seed: int = 42,
    ):
        super().__init__()
        self.spec = describe({"name": name, "split": split, "extra": extra})
        self.root, self.download = root, download
        self.batch_size, self.eval_batch_size, self.val_size = batch_size, eval_batch_size, val_size
        self.mean, self.std, self.seed = mean, std, seed
        self.augment_name, self.augment_strength = augment, augment_strength or {}
        self.augment, self.outliers = None, outliers
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}
        self.loaded: dict[str, tuple[Tensor, Tensor]] = {}  # uint8 splits read before setup, handed over to it

    def prepare_data(self) -> None:
        """Runs on one process only, so parallel ranks never download at once; data in memory needs no files."""
        if self.download and not (self.splits or self.loaded):
            download_once(self.spec, self.root)

    def read(self, split: str) -> tuple[Tensor, Tensor]:
        """A split's uint8 images and labels, read once whether statistics or setup asks first."""
        if split not in self.loaded:
            self.loaded[split] = load_split(self.spec, self.root, split)
        return self.loaded[split]

    def normalization(self) -> tuple[Statistic, Statistic]:
        """data.mean and data.std as configured, or measured once on the official training images."""
        if self.mean is None or self.std is None:
            self.prepare_data()  # measured before Lightning would call it
            self.mean, self.std = channel_statistics(self.read("train")[0])
        return self.mean, self.std

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        mean, std = self.normalization()
        images, labels = self.read("train")
        check_val_size(self.val_size, len(labels))
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed))
        val_rows, train_rows = order[: self.val_size], order[self.val_size :]
        test_images, test_labels = self.read("test")
        for name, (split_images, split_labels) in {
            "train": (images[train_rows], labels[train_rows]),
            "val": (images[val_rows], labels[val_rows]),
            "test": (test_images, test_labels),
        }.items():
            self.splits[name] = (normalize(split_images, mean, std).to(device), split_labels.to(device))
        self.loaded.clear()
        background = -per_channel(mean) / per_channel(std)  # where a black pixel lands: what augmentation pads with
        background = background.to(device) if isinstance(background, Tensor) else background
        self.augment = build_augmentation(self.augment_name, self.augment_strength, background)

    def loader(self, split: str, training: bool = False) -> ResidentLoader:
        """Training batches are shuffled and augmented; evaluation batches are large and ordered."""
        images, labels = self.splits[split]
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        sampler = ShardedPermutation(
            len(labels),
            self.batch_size if training else self.eval_batch_size,
            shuffle=training,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
        )
        if not training:
            return ResidentLoader(images, labels, sampler)
        return ResidentLoader(images, labels, sampler, self.augment, self.outliers)

    def train_dataloader(self) -> ResidentLoader:
        return self.loader("train", training=True)

    def val_dataloader(self) -> ResidentLoader:
        return self.loader("val")
