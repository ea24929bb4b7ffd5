"""The one owner of a run's and a sweep's files: every name inside them is spelled here and nowhere else.

Training writes a run directory; evaluate, predict, export, serve, report and the sweep summary only
read it. docs/ARCHITECTURE.md lists each file with who writes and who reads it. Nothing here imports
torch, so the fail-fast checks can use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf

from mnist_cnn.errors import RunBusy, UserError

HYDRA_RECORD = ".hydra"  # Hydra's own copy of the config, its settings and the overrides


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Write through `<path>.<writer>.partial`, fsync it and rename it over `path`.

    A rename within one folder is atomic, so a crash, a full disk or a failed serialization leaves the
    previous file intact, never half of a new one. Each writer has its own partial file, so two processes
    saving the same file at once (two resumes of one sweep) each rename a whole file, and the last wins.
    """
    partial = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with partial.open("wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise


def write_json(path: Path, content: dict[str, Any]) -> None:
    with atomic_file(path) as handle:
        handle.write((json.dumps(content, indent=2) + "\n").encode())


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@dataclass(frozen=True)
class RunDir:
    """A run directory: what training writes, and what every later command reads."""

    path: Path

    CONFIG = "config.yaml"  # the resolved config the run trained with
    METRICS = "metrics.json"  # final metrics, measured with the best checkpoint
    EVAL = "eval.json"  # `evaluate`'s result on the run's own test set
    EVAL_ON = "eval_{}.json"  # `evaluate data=<name>`'s result on another data set, by its label (eval_usps.json)
    CLASSES = "classes.json"  # the class names, in the order of the model's outputs
    CALIBRATION = "calibration.json"  # `calibrate`'s "not sure" threshold and how it was measured
    CHECKPOINTS = "checkpoints"
    INCOMING_CHECKPOINTS = "checkpoints.partial"  # a continued run's copies, renamed to checkpoints/ when complete
    # Lightning's file-name templates (without .ckpt) of the best and the every-epoch checkpoint
    BEST_CHECKPOINT_NAME = "best-epoch{epoch:02d}-val_acc{val/acc:.4f}"
    LAST_CHECKPOINT_NAME = "last"
    LOG = "train.log"  # Hydra's job log (hydra.job.name is train)
    LOCK = ".lock"  # held by the process training here
    TENSORBOARD = "tensorboard"  # the folder of the `logger.tensorboard` node (each logger writes into its key)
    EXPORTS = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}  # `export`'s files by format
    PLOTS = "plots"  # the run's figures as PNGs: curves, test_confusion, test_misclassified

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    @property
    def metrics_file(self) -> Path:
        return self.path / self.METRICS

    @property
    def eval_file(self) -> Path:
        return self.path / self.EVAL

    def eval_file_on(self, label: str) -> Path:
        return self.path / self.EVAL_ON.format(label)

    def evaluations_on(self) -> dict[str, dict[str, Any]]:
        """Every `evaluate data=<name>` result of this run, by the data set's label."""
        prefix, suffix = self.EVAL_ON.split("{}")
        return {
            path.name.removeprefix(prefix).removesuffix(suffix): read_json(path)
            for path in sorted(self.path.glob(self.EVAL_ON.format("*")))
        }

    @property
    def classes_file(self) -> Path:
        return self.path / self.CLASSES

    def write_classes(self, classes: Sequence[str]) -> None:
        write_json(self.classes_file, {"classes": list(classes)})

    def read_classes(self) -> list[str] | None:
        """The class names training recorded; None for runs written before they were."""
        return read_json(self.classes_file)["classes"] if self.classes_file.is_file() else None

    @property
    def calibration_file(self) -> Path:
        return self.path / self.CALIBRATION

    def write_calibration(self, calibration: dict[str, Any]) -> None:
        write_json(self.calibration_file, calibration)

    def read_calibration(self) -> dict[str, Any] | None:
        """What `calibrate` measured; None for a run never calibrated."""
        return read_json(self.calibration_file) if self.calibration_file.is_file() else None

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def incoming_checkpoints(self) -> Path:
        return self.path / self.INCOMING_CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        """Where the run keeps the checkpoint it resumes from, whether or not it is there yet."""
        return self.checkpoints / f"{self.LAST_CHECKPOINT_NAME}.ckpt"

    @property
    def hydra_file(self) -> Path:
        return self.path / HYDRA_RECORD / "hydra.yaml"

    @property
    def job_config_file(self) -> Path:
        """The config as Hydra composed it for this job, before our checks resolved anything."""
        return self.path / HYDRA_RECORD / "config.yaml"

    def export_file(self, format: str) -> Path:
        return self.path / self.EXPORTS[format]

    def plot(self, name: str) -> Path:
        return self.path / self.PLOTS / f"{name}.png"

    def logger_dir(self, name: str) -> Path:
        """Where the logger of the `logger.<name>` config node writes (e.g. tensorboard/)."""
        return self.path / name

    def holds_run(self) -> bool:
        """True once a run has saved something here (a checkpoint or its metrics).

        A run killed before its first checkpoint holds nothing yet, so it can be started again in place.
        """
        return any(self.checkpoints.glob("*.ckpt")) or self.metrics_file.exists()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held while a run trains here, so that a second run or resume of it is refused, not interleaved.

        The operating system releases it when the process dies, even by kill -9.
        """
        lock = FileLock(self.path / self.LOCK, timeout=0)
        try:
            lock.acquire()
        except Timeout as held:
            raise RunBusy(
                f"another process is training {self.path} (it holds {lock.lock_file}): wait for it to end"
            ) from held
        try:
            yield
        finally:
            lock.release()

    def earlier_metrics_file(self, epochs: int) -> Path:
        """Where a finished run's metrics are kept when a resume trains it further."""
        return self.path / f"metrics_after_{epochs}_epochs.json"

    def restart_command(self) -> str:
        """The command that starts a run killed before its first checkpoint again, in place."""
        record = self.path / HYDRA_RECORD / "overrides.yaml"
        overrides = [str(line) for line in OmegaConf.load(record)] if record.is_file() else []
        words = ["python", "-m", "mnist_cnn.train", f"hydra.run.dir={self.path}", *overrides]
        return " ".join(shlex.quote(word) for word in words)

    def read_config(self) -> DictConfig:
        """The saved config as written; `training.config.load_run_config` upgrades older layouts."""
        if not self.config_file.is_file():
            raise UserError(f"{self.path} is not a run directory (no {self.CONFIG}): pass a folder under outputs/")
        return OmegaConf.load(self.config_file)

    def write_config(self, cfg: DictConfig) -> None:
        with atomic_file(self.config_file) as handle:
            handle.write(OmegaConf.to_yaml(cfg, resolve=True).encode())

    def read_metrics(self) -> dict[str, Any]:
        return read_json(self.metrics_file)

    def status(self) -> str | None:
        """metrics.json's status (ok, diverged or failed); None before the run has finished or failed."""
        return self.read_metrics().get("status") if self.metrics_file.is_file() else None

    def finished(self) -> bool:
        """Trained to its end: ok, or stopped by a non-finite loss (a sweep keeps it; a failed job runs again)."""
        return self.status() in ("ok", "diverged")

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.metrics_file, metrics)

    def relative(self, path: str | Path) -> str:
        """A path inside the run, relative to it, as metrics.json records files (a moved run still finds them)."""
        return str(Path(path).resolve().relative_to(self.path.resolve()))

    def best_checkpoint(self) -> Path:
        """The checkpoint metrics.json names as best, else the newest file named by BEST_CHECKPOINT_NAME."""
        if self.metrics_file.is_file():
            named = self.read_metrics().get("best_checkpoint")
            if named and (self.path / named).is_file():
                return self.path / named
        prefix = self.BEST_CHECKPOINT_NAME.split("{")[0]
        candidates = sorted(self.checkpoints.glob(f"{prefix}*.ckpt"), key=lambda path: path.stat().st_mtime)
        if not candidates:
            raise UserError(f"{self.path} has no best checkpoint in {self.CHECKPOINTS}/: train it to the end first")
        return candidates[-1]

    def checkpoint(self, which: str) -> Path:
        """`best`, `last`, or a checkpoint file given by its path."""
        if which == "best":
            return self.best_checkpoint()
        path = self.last_checkpoint if which == "last" else Path(which)
        if not path.is_file():
            raise UserError(f"ckpt={which}: {path} does not exist: use best, last or the path of a .ckpt file")
        return path

    def hydra_settings(self) -> DictConfig:
        """The `hydra` node Hydra saved for this job (its number, overrides and group choices)."""
        return OmegaConf.load(self.hydra_file).hydra


@dataclass(frozen=True)
class SweepDir:
    """A `-m` sweep: one run directory per job, the summary, the plots and the selected model."""

    path: Path

    RECORD = "sweep.yaml"  # what every job shares, and the keys that differ between them
    SUMMARY_CSV = "summary.csv"
    SUMMARY_MD = "summary.md"
    SELECTED = "selected_model"  # a copy of the best job, usable as a run directory
    ACCURACY_PLOT = "test_acc_by_lr.png"
    CURVES_PLOT = "best_curves.png"
    MULTIRUN = "multirun.yaml"  # the sweep's config and command-line overrides, as it started
    PLAN = "sweep_plan.json"  # every job of the grid, what it trains, and when this session started
    LOCK = ".lock"  # held while the summary is written
    STOP = "stop_requested"  # written when a signal stops the sweep: jobs that start later return at once

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def file(self, name: str) -> Path:
        return self.path / name

    def read_plan(self) -> dict[str, Any]:
        return read_json(self.file(self.PLAN))

    def write_plan(self, plan: dict[str, Any]) -> None:
        write_json(self.file(self.PLAN), plan)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held while one process writes the summary, so that two processes resuming a sweep take turns."""
        with FileLock(self.file(self.LOCK)):
            yield

    @property
    def selected(self) -> RunDir:
        return RunDir(self.path / self.SELECTED)

    def write_record(self, shared: list[str], varying: list[str]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.file(self.RECORD)) as handle:
            handle.write(OmegaConf.to_yaml({"shared": shared, "varying": varying}).encode())

    def record(self) -> DictConfig | None:
        """The sweep's record, or None for a sweep started before there was one."""
        return OmegaConf.load(self.file(self.RECORD)) if self.file(self.RECORD).is_file() else None

    def jobs(self) -> list[RunDir]:
        """The job directories in the order Hydra numbered them (a folder Hydra did not number is no job)."""
        return list(self.numbered_jobs().values())

    def numbered_jobs(self) -> dict[int, RunDir]:
        """Each job directory by the number Hydra gave its job, in that order."""
        numbered = {}
        for folder in self.path.iterdir() if self.path.is_dir() else ():
            job = RunDir(folder)
            if folder.name != self.SELECTED and job.hydra_file.is_file():
                number = job_number(job.hydra_file)
                if number is not None:
                    numbered[number] = job
        return dict(sorted(numbered.items()))


def job_number(hydra_file: Path) -> int | None:
    """`hydra.job.num` from Hydra's record of a job, read as plain YAML: 50 times quicker than OmegaConf.

    Progress lines read every job's number after every job, so this is on a sweep's critical path.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with hydra_file.open() as file:
        job = ((yaml.load(file, Loader=loader) or {}).get("hydra") or {}).get("job") or {}
    number = job.get("num")
    return number if isinstance(number, int) else None


def or_default(value: str | None, default: str) -> str:
    """`${or_default:${resume},<new dir>}`: a resumed run's own directory, else a new one.

    (oc.select would return the null instead of its default.)
    """
    return default if value is None else value


def hydra_record(resume: str | None) -> str:
    """Hydra's record of a command; a resumed run adds its own beside the original's instead of overwriting it."""
    if resume is None:
        return HYDRA_RECORD
    return f"{HYDRA_RECORD}/resumed_{time.strftime('%Y-%m-%d_%H-%M-%S')}_{secrets.token_hex(3)}"


PRESET_GROUPS = ("experiment", "sweep", "hparams_search")  # they name a sweep, never a job


def job_name(number: int, overrides: list[str], sweep_dir: str) -> str:
    """`3_optim.lr=0.1,optim=sgd`: a job's number and the overrides that tell it apart from the sweep's other jobs.

    What all jobs share is written once, in the sweep's record; presets and paths never name a job.
    """
    record = SweepDir(Path(sweep_dir)).record()
    varying = set(record.varying) if record is not None else None
    pairs = []
    for line in overrides:
        key, _, value = line.lstrip("+~").partition("=")
        if key not in PRESET_GROUPS and (varying is None or key in varying):
            pairs.append(f"{key}={value.replace('/', '-')}")
    return "_".join([str(number), ",".join(sorted(pairs))]) if pairs else str(number)


def register_resolvers() -> None:
    """The resolvers that name run and sweep directories.

    `${unique:}` is a random tag, cached so that every use within one process agrees.
    """
    resolvers = {
        "job_name": (job_name, False),
        "unique": (lambda: secrets.token_hex(3), True),
        "or_default": (or_default, False),
        "hydra_record": (hydra_record, True),
    }
    for name, (resolver, cached) in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver, use_cache=cached)
