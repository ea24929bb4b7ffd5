"""The config outside a command line: composed in-process, or read back from a saved run (upgraded).

No torch here: the checks and the resume path use it before torch is imported.
"""

from __future__ import annotations

import copy
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from mnist_cnn.rundir import RunDir, register_resolvers

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"

# mnist_cnn 0.1.0 named torch's schedulers and put Lightning's `interval` beside their arguments.
OLD_SCHEDULERS = {
    "torch.optim.lr_scheduler.OneCycleLR": "mnist_cnn.training.schedules.one_cycle",
    "torch.optim.lr_scheduler.CosineAnnealingLR": "mnist_cnn.training.schedules.cosine",
    "torch.optim.lr_scheduler.StepLR": "mnist_cnn.training.schedules.step_decay",
}
OLD_PACKAGE_PREFIX = "mnist_cnn.models."  # models moved into mnist_cnn.training.models


def compose_config(*overrides: str, hydra: bool = False) -> DictConfig:
    """The config `python -m mnist_cnn.train <overrides>` composes, for tests, benchmarks and notebooks."""
    from hydra import compose, initialize_config_dir

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)


def default_node(group: str, option: str = "default") -> DictConfig:
    """One option of a config group as shipped (conf/<group>/<option>.yaml)."""
    return OmegaConf.load(CONFIG_DIR / group / f"{option}.yaml")


def upgrade_config(saved: DictConfig) -> DictConfig:
    """A saved config in today's layout: runs written by mnist_cnn 0.1.0 still evaluate, predict, export, resume."""
    cfg = copy.deepcopy(saved)
    with open_dict(cfg):
        if "speed" not in cfg:
            cfg.speed = {
                "channels_last": cfg.model.pop("channels_last", True),
                "compile": cfg.model.pop("compile", False),
            }
        if cfg.model._target_.startswith(OLD_PACKAGE_PREFIX):
            cfg.model._target_ = "mnist_cnn.training.models." + cfg.model._target_.removeprefix(OLD_PACKAGE_PREFIX)
        if cfg.scheduler.get("_target_") in OLD_SCHEDULERS:
            cfg.scheduler._target_ = OLD_SCHEDULERS[cfg.scheduler._target_]
            cfg.scheduler.pop("interval", None)
            cfg.scheduler._partial_ = True
        if "name" not in cfg.data:
            cfg.data.name = "mnist"  # every run trained on MNIST before data.name existed
        if "checkpoint" in cfg.callbacks:
            cfg.callbacks = upgraded_callbacks(cfg.callbacks)
        for name, settings in cfg.logger.items():
            if "_target_" not in settings:
                cfg.logger[name] = OmegaConf.merge(default_node("logger", name)[name], settings)
    return cfg


def upgraded_callbacks(old: DictConfig) -> DictConfig:
    """0.1.0's `checkpoint`, `lr_monitor` and `progress` settings moved into today's callback nodes."""
    callbacks = default_node("callbacks")
    for key in ("monitor", "mode", "save_top_k"):
        callbacks.best_checkpoint[key] = old.checkpoint[key]
    if not old.checkpoint.get("save_last", True):
        callbacks.last_checkpoint = None
    callbacks.lr_monitor.logging_interval = old.lr_monitor.logging_interval
    callbacks.progress.style = old.progress
    return callbacks


def load_run_config(run_dir: RunDir) -> DictConfig:
    """A run's saved config.yaml in today's layout."""
    return upgrade_config(run_dir.read_config())
