"""The config outside a command line: composed in-process, or read back from a saved run (upgraded).

No torch here: the checks and the resume path use it before torch is imported.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from mnist_cnn.errors import UserError, first_line
from mnist_cnn.rundir import RunDir, register_resolvers
from mnist_cnn.training.schema import validate

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


def default_choices() -> dict[str, str | None]:
    """Each group in config.yaml's defaults list with its default option (None: off unless chosen)."""
    defaults = OmegaConf.load(CONFIG_DIR / "config.yaml").defaults
    return {group: option for entry in defaults if isinstance(entry, DictConfig) for group, option in entry.items()}


def first_sentence(path: Path) -> str:
    """An option's description: the first sentence of the comment block that opens its YAML."""
    block = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            block.append(line.lstrip("# ").strip())
    text = " ".join(block)
    return text.split(". ")[0].rstrip(".:")


def describe_groups() -> str:
    """Every config group with its options, the default first, one line each (train's --help)."""
    defaults, lines = default_choices(), []
    groups = sorted(
        path.name for path in CONFIG_DIR.iterdir() if path.is_dir() and not path.name.startswith(("_", "hydra"))
    )
    for group in groups:
        default = defaults.get(group)
        options = sorted(
            sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml")), key=lambda name: name != default
        )
        how = "" if default else f"  (off unless chosen: {'' if group in defaults else '+'}{group}=<option>)"
        lines.append(f"{group}:{how}")
        labels = {option: f"{option} (default)" if option == default else option for option in options}
        width = max(len(label) for label in labels.values()) + 2
        lines += [
            f"  {labels[option]:<{width}}{first_sentence(CONFIG_DIR / group / f'{option}.yaml')}" for option in options
        ]
    return "\n".join(lines).replace("$", "$$")  # Hydra fills the help template with string.Template


def upgrade_config(saved: DictConfig) -> DictConfig:
    """A saved config in today's layout: runs written by mnist_cnn 0.1.0 still evaluate, predict, export, resume."""
    cfg = copy.deepcopy(saved)
    with open_dict(cfg):
        cfg.setdefault("init_from", None)
        cfg.setdefault("continue_from", None)
        cfg.trainer.setdefault("enable_model_summary", False)
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
        # Runs saved before data.augment=wild shrank digits never did (their blur now reads as a sigma in pixels)
        cfg.data.augment_strength.setdefault("low_resolution", 0.0)
        cfg.data.setdefault("outliers", 0.0)  # runs saved before outlier exposure trained on digits only
        if "name" not in cfg.data:
            cfg.data.name = "mnist"  # every run trained on MNIST before data.name existed
        if "checkpoint" in cfg.callbacks:
            cfg.callbacks = upgraded_callbacks(cfg.callbacks)
        for name, settings in (cfg.get("logger") or {}).items():
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


# What a saved run's config may name: a run directory is data, and loading one must not run other code.
SAVED_TARGETS = ("mnist_cnn.", "torch.optim.", "pytorch_lightning.callbacks.")


def targets(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every `_target_` in a config, with the dotted key of its node."""
    if isinstance(node, DictConfig):
        for key, value in node.items_ex(resolve=False):
            if key == "_target_":
                yield where, value
            else:
                yield from targets(value, f"{where}.{key}".lstrip("."))
    elif isinstance(node, ListConfig):
        for index, value in enumerate(node):
            yield from targets(value, f"{where}[{index}]")


def load_run_config(run_dir: RunDir) -> DictConfig:
    """A saved config.yaml in today's layout; refused if it names code beyond SAVED_TARGETS or breaks the schema."""
    saved = run_dir.read_config()
    for where, target in targets(saved):
        if not str(target).startswith(SAVED_TARGETS):
            raise UserError(
                f"{run_dir.config_file} names {where or 'its root'}._target_={target}: a saved run may only name "
                f"classes of {', '.join(name.rstrip('.') for name in SAVED_TARGETS)}; it was edited, or is not a run"
            )
    try:
        cfg = upgrade_config(saved)
        validate(OmegaConf.to_container(cfg, resolve=True))
    except (UserError, OmegaConfBaseException, AttributeError, KeyError, TypeError) as error:
        raise UserError(
            f"{run_dir.config_file} is not a valid run config ({first_line(error)}): train the run again"
        ) from error
    return cfg
