"""Train, validate and test one run, or a sweep with -m: `python -m mnist_cnn.train model=cnn3 optim=adam`."""

import sys

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    import hydra
    from omegaconf import DictConfig

    from mnist_cnn.errors import TrainingInterrupted, UserError
    from mnist_cnn.paths import register_resolvers
    from mnist_cnn.run import run
    from mnist_cnn.sweep import in_multirun, run_sweep_job

register_resolvers()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    if in_multirun():
        return run_sweep_job(cfg)
    try:
        return run(cfg)
    except UserError as error:
        sys.exit(f"error: {error}")
    except TrainingInterrupted as stop:
        sys.exit(str(stop))


if __name__ == "__main__":
    main()
