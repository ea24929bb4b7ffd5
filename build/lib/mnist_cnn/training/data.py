"""MNIST as one normalized tensor on the training device, batched by slicing.

torchvision's per-sample PIL path delivers a few thousand images/s on a laptop CPU; slicing a
preloaded tensor delivers over a million. So the data is read once (through torchvision, which
keeps the real download path), normalized once, moved to the device once, and every batch is
a slice taken by a seeded per-epoch permutation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytorch_lightning as pl
import torch
from filelock import FileLock
from torch import Tensor
from torchvision.datasets import MNIST

from mnist_cnn.errors import UserError, last_line
from mnist_cnn.training.augment import build_augmentation
from mnist_cnn.training.mnist_files import RAW_FILES, check_raw_files, has_mnist, is_complete, raw_dir

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def download_once(root: str | Path) -> None:
    """Fetch MNIST into root unless it is there; a file lock lets parallel sweep jobs share one download.

    A failed download (no network, a proxy, a full disk) is one line with the way to put the files in place.
    """
    if is_complete(root):
        return
    raw_dir(root).mkdir(parents=True, exist_ok=True)
    with FileLock(raw_dir(root).parent / "download.lock"):
        if has_mnist(root):
            return
        try:
            MNIST(str(root), train=True, download=True)
        except (RuntimeError, OSError) as error:
            files = ", ".join(f"{name}.gz" for name in RAW_FILES)
            raise UserError(
                f"could not download MNIST into {raw_dir(root)} ({last_line(error)}): download {files} from "
                f"{MNIST.mirrors[0]} into that folder and run again (they are unpacked there), or point "
                "data.root at an existing copy (<root>/MNIST/raw/*-ubyte) with data.download=false"
            ) from error


def load_split(root: str | Path, train: bool, download: bool) -> tuple[Tensor, Tensor]:
    """uint8 images (N, 28, 28) and int64 labels of the official train or test set."""
    if download:
        download_once(root)
    if not has_mnist(root):
        raise UserError(
            f"data.root={root} holds no MNIST (expected {raw_dir(root)}/*-ubyte): "
            "set data.download=true or point data.root at an existing copy"
        )
    check_raw_files(root)
    dataset = MNIST(str(root), train=train, download=False)
    return dataset.data, dataset.targets


def normalize(images: Tensor, mean: float, std: float) -> Tensor:
    """uint8 (N, 28, 28) to float (N, 1, 28, 28), scaled to [0, 1] then standardized."""
    # In place: each temporary of the 55k training images is a fresh 170 MB to page in.
    return images.float().div_(255.0).sub_(mean).div_(std).unsqueeze(1).contiguous()


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

    def __init__(self, images: Tensor, labels: Tensor, sampler: ShardedPermutation, augment=None):
        self.images, self.labels, self.sampler, self.augment = images, labels, sampler, augment

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        generator = None
        if self.augment is not None:
            generator = torch.Generator(device=self.images.device)
            generator.manual_seed((self.sampler.seed * 100_003 + self.sampler.epoch) * 64 + self.sampler.rank)
        for rows in self.sampler.batches():
            rows = rows.to(self.images.device, non_blocking=True)
            # index_select rather than `self.images[rows]`: faster (benchmarks/data_throughput.py)
            images = self.images.index_select(0, rows)
            if self.augment is not None:
                images = self.augment(images, generator)
            yield images, self.labels.index_select(0, rows)


class MNISTDataModule(pl.LightningDataModule):
    """Official 60k/10k MNIST: a seeded train/validation split of the 60k, the 10k for test."""

    image_shape = (1, 28, 28)  # channels, height, width of one image

    def __init__(
        self,
        root: str,
        download: bool = True,
        batch_size: int = 64,
        eval_batch_size: int = 250,
        val_size: int = 5000,
        mean: float = MNIST_MEAN,
        std: float = MNIST_STD,
        augment: str = "none",
        augment_strength: dict | None = None,
        seed: int = 42,
    ):
        super().__init__()
        self.root, self.download = root, download
        self.batch_size, self.eval_batch_size, self.val_size = batch_size, eval_batch_size, val_size
        self.mean, self.std, self.seed = mean, std, seed
        self.augment = build_augmentation(augment, augment_strength or {}, background=-mean / std)
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}

    def prepare_data(self) -> None:
        """Runs on one process only, so parallel ranks never download at the same time."""
        load_split(self.root, train=True, download=self.download)
        load_split(self.root, train=False, download=self.download)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        images, labels = load_split(self.root, train=True, download=False)
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed))
        val_rows, train_rows = order[: self.val_size], order[self.val_size :]
        test_images, test_labels = load_split(self.root, train=False, download=False)
        for name, (split_images, split_labels) in {
            "train": (images[train_rows], labels[train_rows]),
            "val": (images[val_rows], labels[val_rows]),
            "test": (test_images, test_labels),
        }.items():
            self.splits[name] = (normalize(split_images, self.mean, self.std).to(device), split_labels.to(device))

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
        return ResidentLoader(images, labels, sampler, self.augment if training else None)

    def train_dataloader(self) -> ResidentLoader:
        return self.loader("train", training=True)

    def val_dataloader(self) -> ResidentLoader:
        return self.loader("val")
