"""Accuracy and loss of a network on whole splits, in large batches under inference mode.

Training's final numbers and `mnist_cnn.evaluate` both come from `evaluate`, so they agree exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mnist_cnn.training.data import ImageDataModule


@dataclass
class Scores:
    """What one pass over a split measured."""

    acc: float
    loss: float
    confusion: Tensor  # true x predicted counts
    mistakes: list[tuple[Tensor, int, int]]  # the first misclassified (image, true, predicted)

    def per_class_acc(self, classes: tuple[str, ...]) -> dict[str, float | None]:
        """Each class's accuracy by its name (`k`, not 10); None for a class without images."""
        totals = self.confusion.sum(dim=1)
        return {name: float(self.confusion[k, k] / totals[k]) if totals[k] else None for k, name in enumerate(classes)}


@torch.inference_mode()
def evaluate(
    network: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 250, keep_mistakes: int = 0
) -> Scores:
    """Accuracy, mean cross-entropy and confusion counts, with the network in eval mode."""
    was_training = network.training
    network.eval()
    correct, loss_sum, confusion, mistakes = 0, 0.0, None, []
    for start in range(0, len(labels), batch_size):
        batch_images, batch_labels = images[start : start + batch_size], labels[start : start + batch_size]
        logits = network(batch_images)
        predictions = logits.argmax(dim=1)
        classes = logits.shape[1]
        counts = torch.bincount(batch_labels * classes + predictions, minlength=classes * classes).view(
            classes, classes
        )
        confusion = counts.cpu() if confusion is None else confusion + counts.cpu()
        loss_sum += F.cross_entropy(logits, batch_labels, reduction="sum").item()
        correct += (predictions == batch_labels).sum().item()
        room = keep_mistakes - len(mistakes)
        if room > 0:
            wrong = (predictions != batch_labels).nonzero().flatten()[:room].tolist()
            mistakes += [
                (batch_images[row].float().cpu(), int(batch_labels[row]), int(predictions[row])) for row in wrong
            ]
    network.train(was_training)
    return Scores(correct / len(labels), loss_sum / len(labels), confusion, mistakes)


def images_to_measure(total: int, batch_size: int, limit: int | float) -> int:
    """How many of a split's images a final measurement uses, as Lightning reads a `limit_*_batches`.

    A float is a fraction of the split, an integer a number of batches.
    """
    if isinstance(limit, float):
        return max(1, int(total * limit))
    return min(total, int(limit) * batch_size)


def measurement_limits(trainer: Mapping[str, Any]) -> dict[str, int | float]:
    """The trainer's limits on each split, applied to the final measurement too, so a smoke test stays seconds.

    `fast_dev_run` measures one batch of each split (or its number of batches).
    """
    if trainer.get("fast_dev_run"):
        batches = 1 if trainer["fast_dev_run"] is True else int(trainer["fast_dev_run"])
        return dict.fromkeys(("train", "val", "test"), batches)
    return {split: trainer.get(f"limit_{split}_batches", 1.0) for split in ("train", "val", "test")}


def final_metrics(
    network: nn.Module, datamodule: ImageDataModule, limits: Mapping[str, int | float], keep_mistakes: int = 32
) -> tuple[dict[str, Any], Scores]:
    """Accuracy and loss on every split in eval mode (train/acc as the seed study reports it), the images
    used and the test set's per-class accuracy; and the test set's scores, for its figures."""
    network.to(datamodule.splits["test"][0].device)
    results: dict[str, Any] = {"measured_images": {}}
    for split, (images, labels) in datamodule.splits.items():
        count = images_to_measure(len(labels), datamodule.eval_batch_size, limits[split])
        scores = evaluate(network, images[:count], labels[:count], datamodule.eval_batch_size, keep_mistakes)
        results[f"{split}/acc"], results[f"{split}/loss"] = scores.acc, scores.loss
        results["measured_images"][split] = count
    results["test/acc_per_class"] = scores.per_class_acc(datamodule.spec.classes)
    return results, scores
