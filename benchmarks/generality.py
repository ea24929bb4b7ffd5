"""What the cross-data-set conversion alone costs, measured on the real data at hand: MNIST.

Run from the repository root: `python -m benchmarks.generality runs=<MNIST run>[,<MNIST run>...] [data_root=...]`.
MNIST's real test digits are re-encoded in the other digit sets' own files (with the tests'
writers of those formats): as USPS (16x16, each digit filling its frame, values in [-1, 1]), as
EMNIST digits (transposed, boxed more tightly) and as SVHN (32x32 RGB in random ink and ground
colours, half of them dark ink on a light ground). A copy of each run is then evaluated on each with
`evaluate data=<name>`, as a user would on the real sets, and `report runs=`'s table is printed.
What the model loses here is lost to the conversion alone: a ceiling on what the real sets can show.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import torch
from omegaconf import OmegaConf

from benchmarks.common import DEFAULT_DATA
from mnist_cnn.evaluate import evaluate_run
from mnist_cnn.report import find_runs, generality
from mnist_cnn.rundir import RunDir
from mnist_cnn.training.convert import conform
from mnist_cnn.training.data import load_split, to_unit
from mnist_cnn.training.datasets import CATALOGUE, DataSet, describe
from tests.data_files import write_split

MNIST = CATALOGUE["mnist"]
TARGETS = ({"name": "usps"}, {"name": "emnist", "split": "digits"}, {"name": "svhn"})


def in_colour(gray: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gray [0, 1] RGB images painted in a random ink and ground colour each, every other one dark ink on light."""
    bright = 0.6 + 0.4 * torch.rand(len(gray), 3, 1, 1, generator=generator)
    dark = 0.4 * torch.rand(len(gray), 3, 1, 1, generator=generator)
    light_ink = (torch.arange(len(gray)) % 2 == 0).view(-1, 1, 1, 1)
    ink, ground = torch.where(light_ink, bright, dark), torch.where(light_ink, dark, bright)
    return ground + (ink - ground) * gray


def re_encode(images: torch.Tensor, target: DataSet) -> torch.Tensor:
    """MNIST's uint8 test digits as the target set's own images would be stored: its size, channels and colours."""
    pixels = conform(to_unit(images), MNIST, target)
    if target.channels == 3:
        pixels = in_colour(pixels, torch.Generator().manual_seed(0))
    return pixels.mul(255).round().clamp(0, 255).to(torch.uint8)


def main(argv: list[str]) -> None:
    args = OmegaConf.from_cli(argv)
    run_dirs = [Path(run) for run in str(args.runs).split(",")]
    images, labels = load_split(MNIST, Path(str(args.get("data_root", DEFAULT_DATA))), "test")
    with tempfile.TemporaryDirectory() as scratch:
        root, runs = Path(scratch) / "data", Path(scratch) / "runs"
        for data in TARGETS:
            target = describe(data)
            write_split(target, root, "test", re_encode(images, target).numpy(), labels.numpy())
        for run_dir in run_dirs:
            copy = RunDir(shutil.copytree(run_dir, runs / run_dir.name))  # the eval_*.json stay out of the run
            for data in TARGETS:
                evaluate_run(copy.path, str(root), data)
        print(generality(find_runs(str(runs))))


if __name__ == "__main__":
    main(sys.argv[1:])
