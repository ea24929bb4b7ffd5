"""Accuracy and loss of a network on whole splits, in large batches under inference mode.

Training's final numbers and `mnist_cnn.evaluate` both come from `evaluate`, so they agree exactly.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mnist_cnn.training.data import ImageDataModule


@torch.inference_mode()
def evaluate(network: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 250) -> dict[str, Any]:
    """{"acc": fraction correct, "loss": mean cross-entropy, "per_class": each class's accuracy}, in eval mode.

    A class without images in the split gets None.
    """
    was_training = network.training
    network.eval()
    loss_sum, hits, counts = 0.0, 0, 0
    for start in range(0, len(labels), batch_size):
        batch_images, batch_labels = images[start : start + batch_size], labels[start : start + batch_size]
        logits = network(batch_images)
        loss_sum += F.cross_entropy(logits, batch_labels, reduction="sum").item()
        right = batch_labels[logits.argmax(dim=1) == batch_labels]
        hits = hits + torch.bincount(right, minlength=logits.shape[1])
        counts = counts + torch.bincount(batch_labels, minlength=logits.shape[1])
    network.train(was_training)
    per_class = [hit / count if count else None for hit, count in zip(hits.tolist(), counts.tolist(), strict=True)]
    return {"acc": int(hits.sum()) / len(labels), "loss": loss_sum / len(labels), "per_class": per_class}


def final_metrics(network: nn.Module, datamodule: ImageDataModule) -> dict[str, Any]:
    """Accuracy and loss on every split in eval mode (train/acc as the seed study reports it); per class on test.

    Per-class accuracy is keyed by the class names (`k`, not 10), as metrics.json shows it.
    """
    network.to(datamodule.splits["test"][0].device)
    results = {}
    for split, (images, labels) in datamodule.splits.items():
        scores = evaluate(network, images, labels, datamodule.eval_batch_size)
        results[f"{split}/acc"], results[f"{split}/loss"] = scores["acc"], scores["loss"]
        if split == "test":
            results["test/acc_per_class"] = dict(zip(datamodule.spec.classes, scores["per_class"], strict=True))
    return results
