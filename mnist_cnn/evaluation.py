"""Accuracy and loss of a network on a whole split, in large batches under inference mode.

Training's final numbers and `mnist_cnn.evaluate` both come from this one function, so they agree
exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@torch.inference_mode()
def evaluate(network: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 250) -> dict[str, float]:
    """{"acc": fraction correct, "loss": mean cross-entropy}, with the network in eval mode."""
    was_training = network.training
    network.eval()
    correct, loss_sum = 0, 0.0
    for start in range(0, len(labels), batch_size):
        batch_images, batch_labels = images[start : start + batch_size], labels[start : start + batch_size]
        logits = network(batch_images)
        loss_sum += F.cross_entropy(logits, batch_labels, reduction="sum").item()
        correct += (logits.argmax(dim=1) == batch_labels).sum().item()
    network.train(was_training)
    return {"acc": correct / len(labels), "loss": loss_sum / len(labels)}
