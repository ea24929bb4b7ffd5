"""Continuing a run in its own directory, and never training over another run.

`resume=<run dir>` rebuilds the run from the `config.yaml` saved there, so a resumed run cannot
silently become a different experiment: only settings that change how long or where it trains
may be given again on the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from mnist_cnn.errors import UserError
from mnist_cnn.rundir import RunDir
from mnist_cnn.training.config import load_run_config
from mnist_cnn.training.schedules import spans_the_run

# Keys a resumed run may change: how long and where it trains, not what it learns.
RESUMABLE_KEYS = (
    "resume",
    "trainer.max_epochs",
    "trainer.accelerator",
    "trainer.log_every_n_steps",
    "data.root",
    "data.download",
    "data.eval_batch_size",
    "callbacks.progress.style",
)


def require_last_checkpoint(run_dir: RunDir) -> Path:
    if not run_dir.last_checkpoint.is_file():
        raise UserError(
            f"resume={run_dir.path} has no {run_dir.last_checkpoint.relative_to(run_dir.path)} to continue "
            "from: pass a run directory that trained at least one epoch"
        )
    return run_dir.last_checkpoint


def resumed_config(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The resumed run's saved config with the command line's resumable overrides applied."""
    run_dir = RunDir(Path(cfg.resume).resolve())
    require_last_checkpoint(run_dir)
    saved = load_run_config(run_dir)
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if key not in RESUMABLE_KEYS:
            raise UserError(
                f"{key} cannot change when resuming (only {', '.join(RESUMABLE_KEYS[1:])} can): drop it, or "
                "start a new run without resume="
            )
        value = OmegaConf.select(cfg, key)
        if key == "trainer.max_epochs" and value != saved.trainer.max_epochs and spans_the_run(saved.scheduler):
            schedule = saved.scheduler._target_.rsplit(".", 1)[-1]
            raise UserError(
                f"trainer.max_epochs cannot change when resuming this run: its {schedule} schedule was sized "
                f"for {saved.trainer.max_epochs} epochs; start a new run instead"
            )
        OmegaConf.update(saved, key, value, force_add=True)
    saved.resume = str(run_dir.path)
    return saved


def check_run_dir(run_dir: RunDir, resume: str | None) -> None:
    """A resumed run writes into its own directory; a new run only into a fresh, writable one."""
    if resume is not None:
        if run_dir.path.resolve() != Path(resume).resolve():
            raise UserError(
                f"resume={resume} continues in its own directory, not {run_dir.path}: drop hydra.run.dir and -m"
            )
        return
    if run_dir.holds_run():
        raise UserError(
            f"{run_dir.path} already holds a run: continue it with resume={run_dir.path}, or choose a new hydra.run.dir"
        )
    try:
        run_dir.path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"cannot create the run directory {run_dir.path} ({error.strerror}): set hydra.run.dir to a writable folder"
        ) from error
