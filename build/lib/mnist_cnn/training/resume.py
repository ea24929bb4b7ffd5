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
            f"resume={run_dir.path} has no {run_dir.last_checkpoint.relative_to(run_dir.path)} to continue from: it "
            f"stopped before its first epoch ended; start it again in place with {run_dir.restart_command()}"
        )
    return run_dir.last_checkpoint


def refuse_a_finished_run(run_dir: RunDir, max_epochs: int) -> None:
    """A finished run resumes only to train further: re-measuring it could only replace its results."""
    if not run_dir.metrics_file.is_file():
        return
    metrics = run_dir.read_metrics()
    if metrics.get("status") == "diverged":
        raise UserError(f"resume={run_dir.path} diverged (its loss was not finite): start a new run instead")
    if metrics.get("status") == "ok" and max_epochs <= metrics.get("epochs", 0):
        raise UserError(
            f"resume={run_dir.path} finished all its {metrics['epochs']} epochs: give trainer.max_epochs=<more> to "
            f"train it further, or evaluate it with python -m mnist_cnn.evaluate run_dir={run_dir.path}"
        )


def resumed_config(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The resumed run's saved config with the command line's resumable overrides applied."""
    if not isinstance(cfg.resume, str) or not Path(cfg.resume).is_dir():
        raise UserError(f"resume={cfg.resume} is not a run directory: give the folder of the run to continue")
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
    refuse_a_finished_run(run_dir, saved.trainer.max_epochs)
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
