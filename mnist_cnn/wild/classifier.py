"""A trained run as a function from MNIST-style [0, 1] pixels to its class probabilities.

Predict, the web app, the benchmark and the exported files all use this one wrapper, so the
conversion to the run's own input (training/convert.py: a USPS or SVHN model gets 16x16 or
32x32 RGB) and its normalization constants are applied in exactly one place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
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
    """

    def __init__(self, network: nn.Module, mean: Statistic, std: Statistic, trained_on: DataSet, classes: list[str]):
        super().__init__()
        self.network, self.trained_on, self.classes = network, trained_on, classes
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
    return PixelClassifier(module.network, cfg.data.mean, cfg.data.std, trained_on, classes).eval()


@torch.no_grad()
def probabilities(classifier: nn.Module, digits: np.ndarray) -> np.ndarray:
    """(N, 28, 28) MNIST-style characters in [0, 1] -> (N, classes) class probabilities."""
    pixels = torch.from_numpy(np.ascontiguousarray(digits, dtype=np.float32)).unsqueeze(1)
    return classifier(pixels).numpy()
