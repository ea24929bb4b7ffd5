"""Fail-fast checks on a composed config, run before any training and before any output exists."""

from __future__ import annotations

import math

from omegaconf import DictConfig, OmegaConf

from mnist_cnn.data import check_raw_files, has_mnist, train_set_size
from mnist_cnn.errors import UserError
from mnist_cnn.models import STEMS


def number(cfg: DictConfig, key: str) -> float:
    """The value at a dotted key as a number, or a clear error naming the key."""
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise UserError(f"{key}={value!r} is not a number: give a numeric value")
    return value


def require(condition: bool, key: str, value: object, allowed: str) -> None:
    if not condition:
        raise UserError(f"{key}={value} is invalid: allowed values are {allowed}")


def require_positive_integer(cfg: DictConfig, key: str) -> None:
    value = number(cfg, key)
    require(value >= 1 and float(value).is_integer(), key, value, "an integer >= 1")


def check_config(cfg: DictConfig) -> None:
    """Raise UserError naming the first bad key and what it allows."""
    lr = number(cfg, "optim.lr")
    require(0 < lr < math.inf, "optim.lr", lr, "a finite number > 0")
    require_positive_integer(cfg, "data.batch_size")
    if "dropout" in cfg.model:
        dropout = number(cfg, "model.dropout")
        require(0 <= dropout < 1, "model.dropout", dropout, "a number in [0, 1)")
    for size in ("width", "convs_per_block"):
        if size in cfg.model:
            require_positive_integer(cfg, f"model.{size}")
    if "stem" in cfg.model:
        require(cfg.model.stem in STEMS, "model.stem", cfg.model.stem, " or ".join(STEMS))
    if has_mnist(cfg.data.root):
        check_raw_files(cfg.data.root)  # the training set's size below comes from a file header
    val_size, train_size = number(cfg, "data.val_size"), train_set_size(cfg.data.root)
    require(
        float(val_size).is_integer() and 1 <= val_size < train_size,
        "data.val_size",
        val_size,
        f"an integer from 1 to {train_size - 1} (the training set has {train_size} images)",
    )
    require_positive_integer(cfg, "trainer.max_epochs")
    if not cfg.data.download and not has_mnist(cfg.data.root):
        raise UserError(
            f"data.root={cfg.data.root} holds no MNIST and data.download=false: "
            "set data.download=true or point data.root at an existing copy"
        )


def check_sweep_strategy(cfg: DictConfig, launcher_target: str) -> None:
    """Refuse Lightning's subprocess DDP in a -m sweep: it re-runs the command, so each rank would restart the sweep.

    ddp_spawn keeps its workers inside the job, and on SLURM each task already is one rank.
    """
    strategy, devices = str(cfg.trainer.strategy), cfg.trainer.devices
    subprocess_ddp = strategy.startswith("ddp") and not any(kind in strategy for kind in ("spawn", "fork", "notebook"))
    if subprocess_ddp and devices != 1 and "Slurm" not in launcher_target:
        raise UserError(
            f"trainer.strategy={strategy} with trainer.devices={devices} cannot run inside a -m sweep "
            "(each process would restart the sweep): use trainer.strategy=ddp_spawn, or hydra/launcher=slurm"
        )
