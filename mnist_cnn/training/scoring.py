"""Accuracy and loss of a network on whole splits, in large batches under inference mode.

Training's final numbers and `mnist_cnn.evaluate` both come from `evaluate`, so they agree exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mnist_cnn.training.data import MNISTDataModule


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


def final_metrics(network: nn.Module, datamodule: MNISTDataModule) -> dict[str, float]:
    """Accuracy and loss on every split, in eval mode (train/acc as the seed study reports it)."""
    network.to(datamodule.splits["test"][0].device)
    results = {}
    for split, (images, labels) in datamodule.splits.items():
        scores = evaluate(network, images, labels, datamodule.eval_batch_size)
        results[f"{split}/acc"], results[f"{split}/loss"] = scores["acc"], scores["loss"]
    return results
