"""`python -m mnist_cnn.train -m resume=<sweep dir>`: an interrupted sweep continues with the command it started with.

Before Hydra starts, `train.main` swaps that command line for the sweep's own, read from the
multirun.yaml the grid sweeper saved when it started, plus `hydra.sweep.dir=<the sweep>` and
`hydra.sweeper.resume=true`. So the same grid, launcher and settings compose again, and the
sweeper keeps the jobs that finished (sweeps/sweeper.py). Hydra settings may be added (another
launcher, more parallel jobs); any other override would make it another sweep, and is refused.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from mnist_cnn.errors import UserError
from mnist_cnn.rundir import RunDir, SweepDir
from mnist_cnn.sweeps.plan import override_key

MULTIRUN_FLAGS = ("-m", "--multirun")
RESUME = "resume="
GRID_SWEEPER = "hydra_plugins.mnist_cnn_sweeper.grid_sweeper.GridSweeper"
REPLACED = ("hydra.sweep.dir", "hydra.sweeper.resume", "hydra.mode")  # set anew for the resumed sweep


def quoted(key: str, value: str) -> str:
    """`key='value'` in Hydra's override grammar, for paths: job folders hold `=` and `,`.

    Inside quotes Hydra unescapes a quote, and the backslashes right before a quote or the end.
    """
    escaped = re.sub(r"(\\*)(?='|$)", r"\1\1", value).replace("'", "\\'")
    return f"{key}='{escaped}'"


def resume_command(sweep_dir: SweepDir) -> str:
    """The command that continues a sweep, quoted for the shell."""
    return f"python -m mnist_cnn.train -m {shlex.quote(RESUME + str(sweep_dir.path))}"


def sweep_arguments(arguments: Sequence[str]) -> list[str]:
    """The command line Hydra runs: `-m resume=<sweep dir>` becomes the sweep's own command, in its directory."""
    resumes = [word for word in arguments if word.startswith(RESUME)]
    if not resumes or not any(flag in arguments for flag in MULTIRUN_FLAGS):
        return list(arguments)
    sweep_dir = SweepDir(Path(resumes[-1].removeprefix(RESUME).strip("'\"")).absolute())
    hydra = saved_sweep(sweep_dir).hydra
    added = [word for word in arguments if word not in MULTIRUN_FLAGS and not word.startswith(RESUME)]
    for override in OverridesParser.create().parse_overrides(added):
        if not override.is_hydra_override():
            raise UserError(
                f"{override.input_line} cannot be added when resuming a sweep: it continues with the overrides it "
                "started with (hydra.* settings may be added)"
            )
    started = [line for line in hydra.overrides.hydra if override_key(line) not in REPLACED]
    return [
        MULTIRUN_FLAGS[0],
        *hydra.overrides.task,
        *started,
        *added,
        quoted("hydra.sweep.dir", str(sweep_dir.path)),
        "hydra.sweeper.resume=true",
    ]


def saved_sweep(sweep_dir: SweepDir) -> DictConfig:
    """The config a grid sweep saved when it started, or one line saying why `resume=` names no such sweep."""
    record = sweep_dir.file(sweep_dir.MULTIRUN)
    if not record.is_file():
        if RunDir(sweep_dir.path).config_file.is_file():
            raise UserError(
                f"resume={sweep_dir.path} is a run, not a sweep: continue it without -m: "
                f"python -m mnist_cnn.train {shlex.quote(RESUME + str(sweep_dir.path))}"
            )
        raise UserError(
            f"resume={sweep_dir.path} is not a sweep directory (it has no {sweep_dir.MULTIRUN}): give the folder "
            "of the sweep to continue, under outputs/sweeps/"
        )
    saved = OmegaConf.load(record)
    sweeper = OmegaConf.select(saved, "hydra.sweeper._target_")
    if sweeper != GRID_SWEEPER:
        raise UserError(
            f"resume={sweep_dir.path} was run by the sweeper {sweeper}: only grid sweeps resume (an Optuna study "
            "continues from its hydra.sweeper.storage)"
        )
    return saved
