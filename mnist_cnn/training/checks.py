"""Fail fast: every check on a run's config, done once, before anything is built or written.

Nothing here imports torch or Lightning, so `python -m mnist_cnn.train optim.lr=0` is refused in
the time it takes to start Hydra (benchmarks/fail_fast.py measures it against `import torch`).
"""

from __future__ import annotations

import difflib
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from mnist_cnn.cli import flat_keys, user_errors
from mnist_cnn.errors import EXIT_BUG, UserError, first_line
from mnist_cnn.rundir import RunDir
from mnist_cnn.training.config import CONFIG_DIR, compose_config
from mnist_cnn.training.datasets import check_files, describe, is_complete, train_set_size
from mnist_cnn.training.resume import check_run_dir, continued_run, resumed_config
from mnist_cnn.training.schema import validate


def require(condition: bool, key: str, value: object, allowed: str) -> None:
    if not condition:
        raise UserError(f"{key}={value} is invalid: allowed values are {allowed}")


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain values, every interpolation resolved, or one line naming what does not resolve."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as error:
        raise UserError(f"{error.full_key} cannot be resolved ({first_line(error)}): fix or drop that value") from error


def check_config(cfg: DictConfig) -> None:
    """Raise UserError naming the first bad key: the schema first, then what the data files say."""
    check_values(resolved(cfg))


def check_values(config: dict[str, Any]) -> None:
    """check_config on the plain, resolved values."""
    validate(config)
    data = config["data"]
    spec = describe(data)
    check_files(spec, data["root"], data["download"])  # the training set's size below comes from a file header
    check_val_size(data["val_size"], train_set_size(spec, data["root"]))


def check_val_size(val_size: int, train_size: int | None) -> None:
    """At least one validation and one training image; an unknown training set size (not read yet) passes."""
    if train_size is not None and val_size >= train_size:
        allowed = f"an integer from 1 to {train_size - 1} (the training set has {train_size} images)"
        require(False, "data.val_size", val_size, allowed)


def check_init_from(path: Path) -> Path:
    """A run directory with a best checkpoint, or a checkpoint file, as an absolute path."""
    if path.is_dir():
        RunDir(path).best_checkpoint()  # refuses a folder without one
    elif not path.is_file():
        raise UserError(f"init_from={path} is neither a run directory nor a checkpoint file: give one of those")
    return path.absolute()


def prepare(cfg: DictConfig, run_dir: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """The config a run trains with, every value checked, its data in place and its directory made ready.

    For `resume=` that is the saved config plus the resumable `overrides`; `data.root` (and
    `init_from`, `continue_from`) become absolute, so the saved config works from any folder. A
    missing MNIST is downloaded here, so a failed download leaves no run directory behind.
    `run(cfg, run_dir)` expects this.
    """
    if cfg.resume:
        cfg = resumed_config(cfg, overrides)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg))  # the run's own copy, free of Hydra's node
    cfg.data.root = str(Path(cfg.data.root).absolute())
    check_config(cfg)
    if cfg.init_from and not cfg.resume:
        cfg.init_from = str(check_init_from(Path(cfg.init_from)))
    if cfg.continue_from and not cfg.resume:
        cfg.continue_from = continued_run(cfg)
    spec = describe(cfg.data)
    if cfg.data.download and not is_complete(spec, cfg.data.root):
        from mnist_cnn.training.data import download_once  # torch, only when there is something to fetch

        download_once(spec, cfg.data.root)
    check_run_dir(RunDir(run_dir), cfg.resume)
    return cfg


def is_group(key: str) -> bool:
    """A config group (model, +sweep, hydra/launcher, ...) rather than a value key."""
    return key.startswith("hydra") or (CONFIG_DIR / key).is_dir()


def check_override_keys(arguments: Sequence[str]) -> None:
    """Refuse a value override whose key the composed config lacks, naming the closest keys.

    Hydra would say `optim.lrr` is not in the config and suggest `+optim.lrr=`, which then fails
    much later inside the optimizer; `+key=` is refused the same way. Only `+trainer.<argument>`
    adds a key: it is passed to Lightning's Trainer. Group options are left to Hydra's own message.
    """
    overrides = OverridesParser.create().parse_overrides([word for word in arguments if "=" in word])
    groups = [override.input_line for override in overrides if is_group(override.key_or_group)]
    try:
        known = set(flat_keys(compose_config(*(line for line in groups if not line.lstrip("+~").startswith("hydra")))))
    except HydraException:
        return  # an unknown group option: Hydra says which when it composes
    for override in overrides:
        key = override.key_or_group
        if is_group(key) or key in known or any(name.startswith(f"{key}.") for name in known):
            continue
        if key.startswith("trainer.") and (override.is_add() or override.is_force_add()):
            continue
        settable = sorted(name for name in known if not any(part.startswith("_") for part in name.split(".")))
        close = difflib.get_close_matches(key, settable, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}?" if close else "see --help for the config's keys"
        raise UserError(f"{key} is not a config key: {hint}")


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
        with stop_on_a_bug(), user_errors():
            prepared = prepare(task_part(config), Path(config.hydra.run.dir), config.hydra.overrides.task)
        with open_dict(config):
            for key in [key for key in config if key != "hydra"]:
                del config[key]
            config.merge_with(prepared)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with stop_on_a_bug(), user_errors():
            check_sweep_strategy(config, str(config.hydra.launcher.get("_target_", "")))


@contextmanager
def stop_on_a_bug() -> Iterator[None]:
    """Hydra turns a callback's exception into a warning and runs the job anyway: stop it instead."""
    try:
        yield
    except Exception:
        traceback.print_exc()
        print("error: the config checks failed unexpectedly (a bug in mnist_cnn, traceback above)", file=sys.stderr)
        sys.exit(EXIT_BUG)


def task_part(config: DictConfig) -> DictConfig:
    """Hydra's config without its own `hydra` node: what the task function sees."""
    return OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
