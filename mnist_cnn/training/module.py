"""The LightningModule: cross-entropy, accuracy, and the optimizer and schedule from the config.

It takes the `model`, `optim`, `scheduler` and `speed` config sections as plain dicts and builds
everything from them, so a checkpoint's stored hyperparameters rebuild the same module and load
with torch's default `weights_only=True`. The model section gets the data set's input channels,
image side and class count added, so the network always fits the data it is trained on.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.functional.classification import multiclass_accuracy

from mnist_cnn.training.datasets import describe

SECTIONS = ("model", "optim", "scheduler", "speed")  # the config sections the module is built from


def build_network(model: dict[str, Any], channels_last: bool) -> nn.Module:
    """Instantiate `model._target_`, its weights laid out channels-last (NHWC) where asked.

    channels_last lets oneDNN's CPU convolution and pooling kernels skip layout reorders
    (measured by benchmarks/overhead.py with `speed.channels_last=false`).
    """
    network = instantiate(model)
    return network.to(memory_format=torch.channels_last) if channels_last else network


class DigitClassifier(pl.LightningModule):
    def __init__(self, model: dict[str, Any], optim: dict[str, Any], scheduler: dict[str, Any], speed: dict[str, Any]):
        super().__init__()
        # logger=False: the run logs hyperparameters once, with its final metrics (real HParams).
        self.save_hyperparameters(logger=False)
        self.network = build_network(model, speed["channels_last"])
        self.forward_network = torch.compile(self.network) if speed["compile"] else self.network
        self.memory_format = torch.channels_last if speed["channels_last"] else torch.contiguous_format
        # The epoch's summed training loss, correct predictions and images seen, on the module's device.
        self.register_buffer("train_totals", torch.zeros(3), persistent=False)
        self.num_classes = model.get("num_classes", 10)
        self.val_accuracy = MulticlassAccuracy(num_classes=self.num_classes, average="micro")

    @classmethod
    def from_config(cls, cfg: DictConfig) -> DigitClassifier:
        """Plain containers in, so checkpoints hold plain hyperparameters; the model's inputs from `cfg.data`."""
        sections = {name: OmegaConf.to_container(cfg[name], resolve=True) for name in SECTIONS}
        sections["model"].update(describe(cfg.data).model_inputs())
        return cls(**sections)

    def forward(self, images: Tensor) -> Tensor:
        return self.forward_network(images.contiguous(memory_format=self.memory_format))

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        if stage == "train":
            self.log_training_step(logits, labels, loss)
            return loss
        self.val_accuracy.update(logits, labels)
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(labels), sync_dist=True)
        self.log(f"{stage}/acc", self.val_accuracy, on_epoch=True, prog_bar=True, batch_size=len(labels))
        return loss

    def log_training_step(self, logits: Tensor, labels: Tensor, loss: Tensor) -> None:
        """Add to the epoch's totals; hand Lightning per-step values only on logging steps.

        Every `self.log` call makes Lightning walk its stored result to move it to the device, and
        torchmetrics' per-step `update` costs more again: three running sums replace both
        (benchmarks/overhead.py measures what is left).
        """
        with torch.no_grad():
            correct = (logits.argmax(dim=1) == labels).sum().to(loss.dtype)
            self.train_totals += torch.stack((loss * len(labels), correct, loss.new_tensor(len(labels))))
        every = self.trainer.log_every_n_steps
        if every and (self.global_step + 1) % every == 0:
            accuracy = multiclass_accuracy(logits.detach(), labels, num_classes=self.num_classes, average="micro")
            self.log_dict(
                {"train/loss_step": loss, "train/acc_step": accuracy}, prog_bar=True, on_step=True, on_epoch=False
            )

    def on_train_epoch_end(self) -> None:
        loss_sum, correct, seen = self.train_totals
        self.log_dict(
            {"train/loss_epoch": loss_sum / seen, "train/acc_epoch": correct / seen}, on_epoch=True, sync_dist=True
        )
        self.train_totals.zero_()
        # Only logged values return from ddp_spawn's workers, so the recipe reads the epoch count from here.
        self.log("epochs", float(self.current_epoch + 1), logger=False, sync_dist=True)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor | None:
        loss = self.shared_step(batch, "train")
        if not self.trainer.strategy.reduce_boolean_decision(not torch.isfinite(loss), all=False):
            return loss
        # A NaN or infinite loss never recovers: stop the run on every rank, and log why for the recipe.
        self.log("diverged", 1.0, logger=False)
        self.trainer.should_stop = True
        # Skipping this update keeps the weights finite, but Lightning's DDP cannot skip a step.
        return loss if self.trainer.world_size > 1 else None

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.shared_step(batch, "val")

    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.hparams.optim)(self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        schedule = instantiate(self.hparams.scheduler)(
            optimizer, total_steps=int(self.trainer.estimated_stepping_batches)
        )
        return {"optimizer": optimizer, "lr_scheduler": schedule}
