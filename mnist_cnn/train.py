"""Train, validate and test one run, or a sweep with -m: `python -m mnist_cnn.train model=cnn3 optim=adam`.

Hydra composes the config; `training.checks.CheckConfigFirst` (a Hydra callback in conf/config.yaml)
checks it before any directory exists. torch and Lightning are imported only after that, so a bad
value is refused in the time Hydra takes to start.
"""

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mnist_cnn.cli import user_errors
from mnist_cnn.errors import EXIT_INTERRUPTED, TrainingInterrupted
from mnist_cnn.rundir import register_resolvers
from mnist_cnn.startup import long_lived_imports
from mnist_cnn.sweeps.resume import sweep_arguments
from mnist_cnn.training.checks import check_override_keys
from mnist_cnn.training.config import describe_groups

log = logging.getLogger(__name__)
register_resolvers()
if not OmegaConf.has_resolver("config_groups"):
    OmegaConf.register_new_resolver("config_groups", describe_groups)  # --help's list of groups and options
HELP_FLAGS = ("-h", "--help", "--hydra-help", "-sc", "--shell-completion", "-i", "--info")


GROUP_ORDER = ("model", "optim", "scheduler", "data", "trainer", "logger", "callbacks", "experiment")


def chosen_options(choices: dict[str, str | None]) -> str:
    """`model=fast  optim=adam  ...`: the groups' options this run was composed from, most telling first."""
    picked = {group: option for group, option in choices.items() if option and not group.startswith("hydra")}
    ordered = sorted(picked, key=lambda group: GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER))
    return "  ".join(f"{group}={picked[group]}" for group in ordered)


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def train(cfg: DictConfig) -> float:
    runtime = HydraConfig.get().runtime
    log.info("run directory: %s", runtime.output_dir)
    log.info("config: %s", chosen_options(runtime.choices))
    with long_lived_imports():
        from mnist_cnn.sweeps.job import in_multirun, run_sweep_job
        from mnist_cnn.training.hparams import overridden_keys
        from mnist_cnn.training.recipe import run
    if in_multirun():
        return run_sweep_job(cfg)
    try:
        with user_errors():
            accuracy = run(cfg, runtime.output_dir, runtime.choices, overridden_keys(HydraConfig.get().overrides.task))
    except TrainingInterrupted as stop:
        print(stop, file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    commands = (
        "tensorboard --logdir {}",
        "python -m mnist_cnn.evaluate run_dir={}",
        "python -m mnist_cnn.serve model={}",
    )
    log.info("look at it:%s", "".join("\n  " + command.format(runtime.output_dir) for command in commands))
    return accuracy


def main() -> None:
    """The command (and the `mnist-train` script): a mistyped key is refused before Hydra starts.

    `-m resume=<sweep dir>` becomes the sweep's own command line first (sweeps/resume.py).
    """
    if not any(word in HELP_FLAGS for word in sys.argv[1:]):
        with user_errors():
            sys.argv[1:] = sweep_arguments(sys.argv[1:])
            check_override_keys(sys.argv[1:])
    train()


if __name__ == "__main__":
    main()
