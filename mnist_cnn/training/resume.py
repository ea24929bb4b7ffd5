"""Continuing a run in its own directory or in a new one, and never training over another run.

`resume=<run dir>` rebuilds the run from the `config.yaml` saved there, so a resumed run cannot
silently become a different experiment: only settings that change how long or where it trains
may be given again on the command line. `continue_from=<run dir>` starts a new run as a finished
run's continuation to more epochs; its config may differ from that run's in the same settings only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def resumable_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides a resume may give, out of a sweep job's: the others are in the saved config already."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [override.input_line for override in parsed if override.key_or_group in RESUMABLE_KEYS]


def unfinished(run_dir: RunDir, max_epochs: int) -> str | None:
    """Why another run cannot continue this one's training (None: it finished all its max_epochs epochs)."""
    if not run_dir.metrics_file.is_file():
        return "it has not finished"
    metrics = run_dir.read_metrics()
    if metrics.get("status") != "ok":
        return f"it {metrics.get('status')}"
    if metrics.get("epochs") != max_epochs:
        return f"it stopped after {metrics.get('epochs')} of its {max_epochs} epochs"
    if not run_dir.last_checkpoint.is_file():
        return f"it has no {run_dir.last_checkpoint.relative_to(run_dir.path)}"
    return None


def flat_values(node: Any, prefix: str = "") -> dict[str, Any]:
    """{"optim.lr": 0.001, ...}: a plain config's leaves (and empty sections) by their dotted keys."""
    if not isinstance(node, dict) or not node:
        return {prefix: node}
    return {
        key: value
        for name, inner in node.items()
        for key, value in flat_values(inner, f"{prefix}.{name}" if prefix else str(name)).items()
    }


def first_difference(saved: DictConfig, cfg: DictConfig, allowed: Sequence[str]) -> tuple[str, Any, Any] | None:
    """The first key, outside `allowed`, whose value differs between two configs, with both values."""
    before = flat_values(OmegaConf.to_container(saved, resolve=True))
    after = flat_values(OmegaConf.to_container(cfg, resolve=True))
    for key in sorted(before.keys() | after.keys()):
        if key not in allowed and before.get(key) != after.get(key):
            return key, before.get(key), after.get(key)
    return None


def continued_run(cfg: DictConfig) -> str:
    """The finished run `continue_from` names, as an absolute path, checked to be this run's first epochs."""
    source = RunDir(Path(cfg.continue_from).absolute())
    if not source.config_file.is_file():
        raise UserError(f"continue_from={cfg.continue_from} is not a run directory: give the folder of a finished run")
    saved = load_run_config(source)
    problem = unfinished(source, saved.trainer.max_epochs)
    if problem:
        raise UserError(f"continue_from={source.path} cannot be continued ({problem}): drop continue_from")
    if saved.trainer.max_epochs >= cfg.trainer.max_epochs:
        raise UserError(
            f"continue_from={source.path} trained {saved.trainer.max_epochs} epochs already: give "
            "trainer.max_epochs above that"
        )
    if spans_the_run(saved.scheduler):
        raise UserError(
            f"continue_from={source.path} cannot be continued: its schedule was sized for its "
            f"{saved.trainer.max_epochs} epochs; train this run on its own (drop continue_from)"
        )
    difference = first_difference(saved, cfg, (*RESUMABLE_KEYS, "continue_from", "init_from"))
    if difference:
        key, before, after = difference
        raise UserError(
            f"continue_from={source.path} is another experiment (its {key} is {before}, this run's {after}): only a "
            "run with the same config and fewer epochs can be continued"
        )
    return str(source.path)


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
