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

# Schedules whose length must be the run's total number of optimizer steps.
SCHEDULE_LENGTH_ARGUMENT = {
    "torch.optim.lr_scheduler.OneCycleLR": "total_steps",
    "torch.optim.lr_scheduler.CosineAnnealingLR": "T_max",
}


def build_network(model: dict[str, Any]) -> nn.Module:
    """Instantiate `model._target_`; the `compile` flag is ours, not the architecture's."""
    arguments = {key: value for key, value in model.items() if key != "compile"}
    return instantiate(arguments)


class DigitClassifier(pl.LightningModule):
    def __init__(self, model: dict[str, Any], optim: dict[str, Any], scheduler: dict[str, Any]):
        super().__init__()
        # logger=False: the run logs hyperparameters once, with its final metrics (real HParams).
        self.save_hyperparameters(logger=False)
        self.network = build_network(model)
        self.forward_network = torch.compile(self.network) if model.get("compile") else self.network
        # ModuleDict keys must not shadow nn.Module attributes such as `train`.
        self.accuracy = nn.ModuleDict({f"{stage}_acc": MulticlassAccuracy(num_classes=10) for stage in ("train", "val", "test")})
        self.diverged = False

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "DigitClassifier":
        """Plain containers in, so checkpoints hold plain hyperparameters."""
        return cls(**{name: OmegaConf.to_container(cfg[name], resolve=True) for name in ("model", "optim", "scheduler")})

    def forward(self, images: Tensor) -> Tensor:
        return self.forward_network(images)

    def shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        accuracy = self.accuracy[f"{stage}_acc"]
        accuracy(logits, labels)
        per_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=per_step, on_epoch=True, prog_bar=True, batch_size=len(labels), sync_dist=not per_step)
        self.log(f"{stage}/acc", accuracy, on_step=per_step, on_epoch=True, prog_bar=True, batch_size=len(labels))
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor | None:
        loss = self.shared_step(batch, "train")
        if not torch.isfinite(loss):
            # A NaN or infinite loss never recovers: stop this run and report it as diverged.
            self.diverged = True
            self.trainer.should_stop = True
            return None
        return loss

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
            settings[length_argument] = int(self.trainer.estimated_stepping_batches)
        scheduler = instantiate(settings, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}
