"""Train, validate and test one run, or a sweep with -m: `python -m mnist_cnn.train model=cnn3 optim=adam`.

Hydra composes the config; `training.checks.CheckConfigFirst` (a Hydra callback in conf/config.yaml)
checks it before any directory exists. torch and Lightning are imported only after that, so a bad
value is refused in the time Hydra takes to start.
"""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from mnist_cnn.cli import user_errors
from mnist_cnn.errors import EXIT_INTERRUPTED, TrainingInterrupted
from mnist_cnn.rundir import register_resolvers
from mnist_cnn.startup import long_lived_imports

register_resolvers()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    with long_lived_imports():
        from mnist_cnn.sweeps.job import in_multirun, run_sweep_job
        from mnist_cnn.training.recipe import run
    if in_multirun():
        return run_sweep_job(cfg)
    runtime = HydraConfig.get().runtime
    try:
        with user_errors():
            return run(cfg, runtime.output_dir, runtime.choices)
    except TrainingInterrupted as stop:
        print(stop, file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
