"""The LightningModule: cross-entropy (and, for non-digits in a batch, outlier exposure), accuracy, and the
optimizer and schedule from the config.

It takes the `model`, `optim`, `scheduler` and `speed` config sections as plain dicts and builds
everything from them, so a checkpoint's stored hyperparameters rebuild the same module and load
with torch's default `weights_only=True`. The model section gets the data set's input channels,
image side and class count added, so the network always fits the data it is trained on.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from mnist_cnn.training.datasets import describe
from mnist_cnn.training.outliers import exposure_loss

SECTIONS = ("model", "optim", "scheduler", "speed")  # the config sections the module is built from


def build_network(model: dict[str, Any], channels_last: bool) -> nn.Module:
    """Instantiate `model._target_`, its weights laid out channels-last (NHWC) where asked.

    channels_last lets oneDNN's CPU convolution and pooling kernels skip layout reorders
    (measured by benchmarks/overhead.py with `speed.channels_last=false`).
    """
    network = instantiate(model)
    return network.to(memory_format=torch.channels_last) if channels_last else network


class DigitClassifier(pl.LightningModule):
    MISCLASSIFIED_KEPT = 32  # validation digits kept per epoch for the Images tab

    def __init__(self, model: dict[str, Any], optim: dict[str, Any], scheduler: dict[str, Any], speed: dict[str, Any]):
        super().__init__()
        # logger=False: the run logs hyperparameters once, with its final metrics (real HParams).
        self.save_hyperparameters(logger=False)
        self.network = build_network(model, speed["channels_last"])
        self.forward_network = torch.compile(self.network) if speed["compile"] else self.network
        self.memory_format = torch.channels_last if speed["channels_last"] else torch.contiguous_format
        # Summed loss, correct predictions and images seen in the epoch, on the module's device: three
        # running sums instead of torchmetrics' per-step work (benchmarks/overhead.py).
        self.register_buffer("train_totals", torch.zeros(3), persistent=False)
        self.register_buffer("val_totals", torch.zeros(3), persistent=False)
        self.val_acc_best = 0.0
        self.val_confusion: Tensor | None = None  # true x predicted counts of the epoch's validation
        self.misclassified: list[tuple[Tensor, int, int]] = []  # (image, true, predicted) for the Images tab

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
        loss, digit_loss, digits = exposure_loss(logits, labels)
        with torch.no_grad():
            predictions = logits.argmax(dim=1)
            totals = self.train_totals if stage == "train" else self.val_totals
            correct = (predictions == labels).sum().to(loss.dtype)
            totals += torch.stack((digit_loss.detach() * digits, correct, digits))
        if stage == "train":
            every = self.trainer.log_every_n_steps
            if every and (self.global_step + 1) % every == 0:  # each self.log call costs, so only when logged
                self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        else:
            self.count_mistakes(images, labels, predictions, logits.shape[1])
        return loss

    @torch.no_grad()
    def count_mistakes(self, images: Tensor, labels: Tensor, predictions: Tensor, classes: int) -> None:
        """The confusion counts, and the first misclassified digits of the epoch."""
        if self.val_confusion is None or len(self.val_confusion) != classes:
            self.val_confusion = torch.zeros(classes, classes, dtype=torch.long, device=labels.device)
        self.val_confusion += torch.bincount(labels * classes + predictions, minlength=classes * classes).view(
            classes, classes
        )
        room = self.MISCLASSIFIED_KEPT - len(self.misclassified)
        if room > 0:
            wrong = (predictions != labels).nonzero().flatten()[:room].tolist()
            self.misclassified += [
                (images[row].float().cpu(), int(labels[row]), int(predictions[row])) for row in wrong
            ]

    def epoch_figures(self, totals: Tensor) -> tuple[Tensor, Tensor]:
        """The epoch's mean loss and accuracy, summed over every rank first."""
        loss_sum, correct, seen = self.trainer.strategy.reduce(totals, reduce_op="sum")
        return loss_sum / seen, correct / seen

    def on_train_epoch_end(self) -> None:
        _, accuracy = self.epoch_figures(self.train_totals)
        self.log("train/acc", accuracy, on_epoch=True)
        self.train_totals.zero_()
        # Only logged values return from ddp_spawn's workers, so the recipe reads the epoch count from here.
        self.log("epochs", float(self.current_epoch + 1), logger=False)

    def on_validation_epoch_start(self) -> None:
        self.val_totals.zero_()
        self.misclassified = []
        if self.val_confusion is not None:
            self.val_confusion.zero_()

    def on_validation_epoch_end(self) -> None:
        loss, accuracy = self.epoch_figures(self.val_totals)
        if not self.trainer.sanity_checking:
            self.val_acc_best = max(self.val_acc_best, float(accuracy))
        self.log_dict({"val/loss": loss, "val/acc": accuracy, "val/acc_best": self.val_acc_best}, prog_bar=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["val_acc_best"] = self.val_acc_best

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.val_acc_best = checkpoint.get("val_acc_best", 0.0)

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
