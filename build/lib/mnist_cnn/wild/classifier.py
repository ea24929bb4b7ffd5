"""A trained run as a function from [0, 1] pixels to ten probabilities.

Predict, the web app, the benchmark and the exported files all use this one wrapper, so the
run's normalization constants are applied in exactly one place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from mnist_cnn.training.checkpoints import load_run_module


class PixelClassifier(nn.Module):
    """The run's network with its data.mean/std baked in: (N, 1, 28, 28) pixels in [0, 1] -> probabilities."""

    def __init__(self, network: nn.Module, mean: float, std: float):
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, pixels: Tensor) -> Tensor:
        return torch.softmax(self.network((pixels - self.mean) / self.std), dim=1)


def load_classifier(model_dir: Path) -> PixelClassifier:
    """Rebuild a run (or a selected model folder) from what it saved, in eval mode on the CPU."""
    cfg, module = load_run_module(model_dir)
    return PixelClassifier(module.network, float(cfg.data.mean), float(cfg.data.std)).eval()


@torch.no_grad()
def probabilities(classifier: nn.Module, digits: np.ndarray) -> np.ndarray:
    """(N, 28, 28) MNIST-style digits in [0, 1] -> (N, 10) class probabilities."""
    pixels = torch.from_numpy(np.ascontiguousarray(digits, dtype=np.float32)).unsqueeze(1)
    return classifier(pixels).numpy()
