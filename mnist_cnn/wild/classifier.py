"""A trained run as a function from MNIST-style [0, 1] pixels to its class probabilities.

Predict, the web app, the benchmark and the exported files all use this one wrapper, so the
conversion to the run's own input (training/convert.py: a USPS or SVHN model gets 16x16 or
32x32 RGB) and its normalization constants are applied in exactly one place.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mnist_cnn.rundir import RunDir
from mnist_cnn.training.checkpoints import load_run_module
from mnist_cnn.training.convert import conform
from mnist_cnn.training.data import Statistic, per_channel
from mnist_cnn.training.datasets import CATALOGUE, DataSet, describe

MNIST_STYLE = CATALOGUE["mnist"]  # what mnist_cnn.wild.preprocess makes of any image


class PixelClassifier(nn.Module):
    """The run's network with its input conversion and data.mean/std baked in.

    (N, 1, 28, 28) MNIST-style pixels in [0, 1] -> (N, classes) probabilities; `classes` names the columns.
    `keeps_grey`: the run was trained on grey ink (`data.augment=wild`: blurred, faded, enlarged from low
    resolution), so the preprocessing keeps a digit's grey for it rather than saturating it as MNIST's.
    """

    def __init__(
        self,
        network: nn.Module,
        mean: Statistic,
        std: Statistic,
        trained_on: DataSet,
        classes: list[str],
        keeps_grey: bool = False,
    ):
        super().__init__()
        self.network, self.trained_on, self.classes, self.keeps_grey = network, trained_on, classes, keeps_grey
        self.register_buffer("mean", torch.as_tensor(per_channel(mean), dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(per_channel(std), dtype=torch.float32))

    def forward(self, pixels: Tensor) -> Tensor:
        pixels = conform(pixels, MNIST_STYLE, self.trained_on)
        return torch.softmax(self.network((pixels - self.mean) / self.std), dim=1)


def load_classifier(model_dir: Path) -> PixelClassifier:
    """Rebuild a run (or a selected model folder) from what it saved, in eval mode on the CPU."""
    cfg, module = load_run_module(model_dir)
    trained_on = describe(cfg.data)
    classes = RunDir(model_dir).read_classes() or list(trained_on.classes)
    keeps_grey = cfg.data.augment == "wild"
    return PixelClassifier(module.network, cfg.data.mean, cfg.data.std, trained_on, classes, keeps_grey).eval()


TTA_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # (rows, columns): a pixel either way
TTA_ANGLES = (-10.0, 10.0)  # degrees: slants within what MNIST itself holds


def rotated(pixels: Tensor, degrees: float) -> Tensor:
    """Rotate (N, 1, 28, 28) pixels about the centre; what comes in from outside is background (0)."""
    angle = math.radians(degrees)
    theta = torch.tensor([[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0]])
    grid = F.affine_grid(theta.expand(len(pixels), 2, 3), list(pixels.shape), align_corners=False)
    return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def tta_views(pixels: Tensor) -> Tensor:
    """The views test-time augmentation averages over: the digit moved a pixel each way and turned a little.

    Each is a way the same digit could have been written or framed; an answer that holds across
    them is one the model is sure of, one that flips lowers the averaged confidence.
    """
    views = [torch.roll(pixels, shift, dims=(2, 3)) for shift in TTA_SHIFTS]
    return torch.stack(views + [rotated(pixels, angle) for angle in TTA_ANGLES])


@torch.no_grad()
def probabilities(classifier: nn.Module, digits: np.ndarray, tta: bool = False) -> np.ndarray:
    """(N, 28, 28) MNIST-style characters in [0, 1] -> (N, classes) probabilities; with tta, averaged over tta_views."""
    pixels = torch.from_numpy(np.ascontiguousarray(digits, dtype=np.float32)).unsqueeze(1)
    if not tta:
        return classifier(pixels).numpy()
    views = tta_views(pixels)
    return classifier(views.flatten(0, 1)).reshape(len(views), len(pixels), -1).mean(0).numpy()
