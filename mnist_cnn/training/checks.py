"""Fail fast: every check on a run's config, done once, before anything is built or written.

Nothing here imports torch or Lightning, so `python -m mnist_cnn.train optim.lr=0` is refused in
the time it takes to start Hydra (benchmarks/fail_fast.py measures it against `import torch`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from mnist_cnn.cli import user_errors
from mnist_cnn.errors import UserError
from mnist_cnn.rundir import RunDir
from mnist_cnn.training.choices import AUGMENTATIONS, PROGRESS_STYLES, STEMS
from mnist_cnn.training.datasets import check_files, describe, train_set_size
from mnist_cnn.training.resume import check_run_dir, resumed_config


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


def require_choice(cfg: DictConfig, key: str, allowed: Sequence[str]) -> None:
    value = OmegaConf.select(cfg, key)
    require(value in allowed, key, value, " or ".join(allowed))


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
        require_choice(cfg, "model.stem", STEMS)
    require_choice(cfg, "data.augment", AUGMENTATIONS)
    if OmegaConf.select(cfg, "callbacks.progress") is not None:
        require_choice(cfg, "callbacks.progress.style", PROGRESS_STYLES)
    require_positive_integer(cfg, "trainer.max_epochs")
    spec = describe(cfg.data)
    check_files(spec, cfg.data.root, cfg.data.download)  # the training set's size below comes from a file header
    check_val_size(number(cfg, "data.val_size"), train_set_size(spec, cfg.data.root))


def check_val_size(val_size: float, train_size: int | None) -> None:
    """At least one validation and one training image; an unknown training set size (not read yet) passes."""
    allowed = (
        "an integer >= 1"
        if train_size is None
        else f"an integer from 1 to {train_size - 1} (the training set has {train_size} images)"
    )
    valid = float(val_size).is_integer() and 1 <= val_size < (train_size or math.inf)
    require(valid, "data.val_size", val_size, allowed)


def prepare(cfg: DictConfig, run_dir: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """The config a run trains with, every value checked and its directory made ready.

    For `resume=` that is the saved config plus the resumable `overrides`; `data.root` becomes
    absolute, so the saved config works from any folder. `run(cfg, run_dir)` expects this.
    """
    if cfg.resume:
        cfg = resumed_config(cfg, overrides)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg))  # the run's own copy, free of Hydra's node
    cfg.data.root = str(Path(cfg.data.root).absolute())
    check_config(cfg)
    check_run_dir(RunDir(run_dir), cfg.resume)
    return cfg


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


class CheckConfigFirst(Callback):
    """Hydra's hook before it makes or writes into any directory: the one place a single run is prepared.

    Hydra hands the task function the very config object this hook receives, so the prepared
    config (a resume resolved, data.root absolute) replaces the composed one in place, and the
    task trains it without checking again. Sweep jobs are prepared one by one in sweeps.job.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with user_errors():
            prepared = prepare(task_part(config), Path(config.hydra.run.dir), config.hydra.overrides.task)
        with open_dict(config):
            for key in [key for key in config if key != "hydra"]:
                del config[key]
            config.merge_with(prepared)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with user_errors():
            check_sweep_strategy(config, str(config.hydra.launcher.get("_target_", "")))


def task_part(config: DictConfig) -> DictConfig:
    """Hydra's config without its own `hydra` node: what the task function sees."""
    return OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
