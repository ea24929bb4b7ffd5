"""Training images/s: our tensor-resident loader against torchvision's MNIST + ToTensor + Normalize DataLoader.

Run from the repository root: `python -m benchmarks.data_throughput [--batch-size 64] [data.root=...]`.
Each loader is drained for full epochs at the same batch size, shuffled, with nothing trained,
so the figures are what each can feed a model at most: one epoch for torchvision's loaders (seconds
long), the median of five for ours (each lasts tens of milliseconds).
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from benchmarks.common import DEFAULT_DATA, stopwatch
from mnist_cnn.training.config import compose_config
from mnist_cnn.training.data import MNIST_MEAN, MNIST_STD
from mnist_cnn.training.recipe import build_datamodule


def images_per_second(loader) -> float:
    count = 0
    with stopwatch() as timing:
        for images, _ in loader:
            count += len(images)
    return count / timing["seconds"]


def median_epoch_images_per_second(loader, epochs: int) -> float:
    """Our epoch lasts tens of milliseconds, too short for one timing to be stable: take the median epoch."""
    rates = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        rates.append(images_per_second(loader))
    return statistics.median(rates)


def torchvision_loader(root: str, batch_size: int, workers: int) -> DataLoader:
    """The loader of pytorch/examples' mnist and most tutorials."""
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    dataset = datasets.MNIST(root, train=True, download=False, transform=transform)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "overrides", nargs="*", help="config overrides, as for mnist_cnn.train (e.g. data.augment=affine)"
    )
    args = parser.parse_args()
    cfg = compose_config(
        f"data.root={DEFAULT_DATA}", "data.download=false", f"data.batch_size={args.batch_size}", *args.overrides
    )
    datamodule = build_datamodule(cfg)
    with stopwatch() as setup:
        datamodule.setup()
    ours = median_epoch_images_per_second(datamodule.train_dataloader(), epochs=5)
    print(f"batch_size={args.batch_size} augment={cfg.data.augment} torch threads={torch.get_num_threads()}")
    print(
        f"ours (tensor-resident)             {ours:12.0f} images/s  (median of 5 epochs; one-off load and "
        f"normalize: {setup['seconds']:.1f} s)"
    )
    for workers in (0, 2):
        baseline = images_per_second(torchvision_loader(cfg.data.root, args.batch_size, workers))
        print(
            f"torchvision DataLoader, workers={workers}  {baseline:12.0f} images/s  -> ours is "
            f"{ours / baseline:7.0f}x (goal: 100x)"
        )


if __name__ == "__main__":
    main()
