"""The LightningModule: cross-entropy, accuracy, and the optimizer and schedule from the config.

It takes the `model`, `optim` and `scheduler` config sections as plain dicts and builds
everything from them, so a checkpoint's stored hyperparameters rebuild the same module and load
with torch's default `weights_only=True`.
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

# Schedules whose length must be the run's total number of optimizer steps.
SCHEDULE_LENGTH_ARGUMENT = {
    "torch.optim.lr_scheduler.OneCycleLR": "total_steps",
    "torch.optim.lr_scheduler.CosineAnnealingLR": "T_max",
}


def schedule_length(settings: dict[str, Any], steps: int) -> int:
    """The run's optimizer steps, one more where OneCycleLR's warm-up would last exactly one step.

    OneCycleLR divides by (warm-up steps - 1), so e.g. pct_start 0.25 over 4 steps raises
    ZeroDivisionError (tiny data under DDP gets there); a spare step the run never takes is harmless.
    """
    if settings["_target_"].endswith("OneCycleLR") and settings.get("pct_start", 0.3) * steps == 1:
        return steps + 1
    return steps


# Model keys that say how to run the network rather than what it is.
RUN_OPTIONS = ("compile", "channels_last")


def build_network(model: dict[str, Any]) -> nn.Module:
    """Instantiate `model._target_` and lay its weights out as `model.channels_last` asks.

    channels_last (NHWC) lets oneDNN's CPU convolution and pooling kernels skip layout
    reorders: about 1.5x more training images/s for the fast CNN here (benchmarks/overhead.py).
    """
    network = instantiate({key: value for key, value in model.items() if key not in RUN_OPTIONS})
    if model.get("channels_last"):
        network = network.to(memory_format=torch.channels_last)
    return network


class DigitClassifier(pl.LightningModule):
    def __init__(self, model: dict[str, Any], optim: dict[str, Any], scheduler: dict[str, Any]):
        super().__init__()
        # logger=False: the run logs hyperparameters once, with its final metrics (real HParams).
        self.save_hyperparameters(logger=False)
        self.network = build_network(model)
        self.forward_network = torch.compile(self.network) if model.get("compile") else self.network
        self.memory_format = torch.channels_last if model.get("channels_last") else torch.contiguous_format
        # The epoch's summed training loss, correct predictions and images seen, on the module's device.
        self.register_buffer("train_totals", torch.zeros(3), persistent=False)
        # ModuleDict keys must not shadow nn.Module attributes such as `train`.
        self.accuracy = nn.ModuleDict({f"{stage}_acc": MulticlassAccuracy(num_classes=10, average="micro") for stage in ("val", "test")})

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "DigitClassifier":
        """Plain containers in, so checkpoints hold plain hyperparameters."""
        return cls(**{name: OmegaConf.to_container(cfg[name], resolve=True) for name in ("model", "optim", "scheduler")})

    def forward(self, images: Tensor) -> Tensor:
        return self.forward_network(images.contiguous(memory_format=self.memory_format))

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        if stage == "train":
            self.log_training_step(logits, labels, loss)
            return loss
        accuracy = self.accuracy[f"{stage}_acc"]
        accuracy.update(logits, labels)
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(labels), sync_dist=True)
        self.log(f"{stage}/acc", accuracy, on_epoch=True, prog_bar=True, batch_size=len(labels))
        return loss

    def log_training_step(self, logits: Tensor, labels: Tensor, loss: Tensor) -> None:
        """Add to the epoch's totals; hand Lightning per-step values only on logging steps.

        Every `self.log` call makes Lightning walk its stored result to move it to the device, which
        cost about a tenth of the fast CNN's CPU step, and torchmetrics' per-step `update` another
        0.5 ms of its 15 ms (benchmarks/overhead.py): three running sums replace it.
        """
        with torch.no_grad():
            correct = (logits.argmax(dim=1) == labels).sum().to(loss.dtype)
            self.train_totals += torch.stack((loss * len(labels), correct, loss.new_tensor(len(labels))))
        every = self.trainer.log_every_n_steps
        if every and (self.global_step + 1) % every == 0:
            accuracy = multiclass_accuracy(logits.detach(), labels, num_classes=10, average="micro")
            self.log_dict({"train/loss_step": loss, "train/acc_step": accuracy}, prog_bar=True, on_step=True, on_epoch=False)

    def on_train_epoch_end(self) -> None:
        loss_sum, correct, seen = self.train_totals
        self.log_dict({"train/loss_epoch": loss_sum / seen, "train/acc_epoch": correct / seen}, on_epoch=True, sync_dist=True)
        self.train_totals.zero_()
        # Only logged values return from ddp_spawn's workers, so run.py reads the epoch count from here.
        self.log("epochs", float(self.current_epoch + 1), logger=False, sync_dist=True)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor | None:
        loss = self.shared_step(batch, "train")
        if not self.trainer.strategy.reduce_boolean_decision(not torch.isfinite(loss), all=False):
            return loss
        # A NaN or infinite loss never recovers: stop the run on every rank, and log why for run.py.
        self.log("diverged", 1.0, logger=False)
        self.trainer.should_stop = True
        # Skipping this update keeps the weights finite, but Lightning's DDP cannot skip a step.
        return loss if self.trainer.world_size > 1 else None

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.shared_step(batch, "test")

    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.hparams.optim)(self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        settings = dict(self.hparams.scheduler)
        interval = settings.pop("interval")
        length_argument = SCHEDULE_LENGTH_ARGUMENT.get(settings["_target_"])
        if length_argument:
            settings[length_argument] = schedule_length(settings, int(self.trainer.estimated_stepping_batches))
        scheduler = instantiate(settings, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}
