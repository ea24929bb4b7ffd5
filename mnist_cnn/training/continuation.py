"""A new run that continues a finished run's training in a directory of its own (`continue_from=<run dir>`).

The new directory starts as the finished run at its last epoch: its checkpoints, with the paths that
Lightning's checkpoint callbacks keep inside them moved to the new directory (so the best epoch so
far stays known), and its loggers' folders without the finished run's final HParams (the new run
logs its own). Training then resumes from the copied last.ckpt as any resume does, so with the same
seed the new run ends exactly as one trained from scratch would: the sweeper's shared epoch
prefixes rest on that.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.plugins.hparams.metadata import PLUGIN_NAME as HPARAMS_PLUGIN
from tensorboard.summary.writer.record_writer import RecordWriter

from mnist_cnn.rundir import RunDir, atomic_file
from mnist_cnn.training.checkpoints import load_checkpoint

EVENT_FILES = "events.out.tfevents.*"  # TensorBoard's event files (their names are TensorBoard's)


def take_over(source: RunDir, run_dir: RunDir, logger_names: Iterable[str]) -> None:
    """Make run_dir the source run at its last epoch; last of all its checkpoints appear, in one rename.

    A copy cut short leaves no checkpoint behind, so the job starts again from scratch in place.
    """
    for name in logger_names:
        copy_logs(source.logger_dir(name), run_dir.logger_dir(name))
    copy_checkpoints(source, run_dir)


def copy_checkpoints(source: RunDir, run_dir: RunDir) -> None:
    incoming = run_dir.incoming_checkpoints
    shutil.rmtree(incoming, ignore_errors=True)
    old, new = os.path.realpath(source.checkpoints), os.path.realpath(run_dir.checkpoints)
    for path in sorted(source.checkpoints.glob("*.ckpt")):
        checkpoint = load_checkpoint(path)
        checkpoint["callbacks"] = moved(checkpoint.get("callbacks", {}), old, new)
        with atomic_file(incoming / path.name) as handle:
            torch.save(checkpoint, handle)
    os.replace(incoming, run_dir.checkpoints)


def moved(value: Any, old: str, new: str) -> Any:
    """Every path under `old` in the callbacks' state (dirpath, best_model_path, best_k_models...) under `new`."""
    if isinstance(value, str) and (value == old or value.startswith(old + os.sep)):
        return new + value[len(old) :]
    if isinstance(value, dict):
        return {moved(key, old, new): moved(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [moved(item, old, new) for item in value]
    return value


def copy_logs(source: Path, target: Path) -> None:
    """Copy a logger's folder; TensorBoard event files lose the finished run's final HParams on the way."""
    for path in sorted(source.rglob("*")) if source.is_dir() else ():
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        elif path.match(EVENT_FILES):
            copy_events_without_final_results(path, destination)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)


def copy_events_without_final_results(source: Path, target: Path) -> None:
    """Copy an event file, record by record, up to the HParams session: what follows it is the finished run's end.

    The final results (`hparams.log_final_results`) are the last thing a run logs, so cutting there
    keeps every epoch's curves whole. The file keeps its name: TensorBoard reads a folder's event
    files in name order, so the copy stays before the continued run's own file.
    """
    with atomic_file(target) as handle:
        writer = RecordWriter(handle)
        for raw in RawEventFileLoader(str(source)).Load():
            if is_final_results(Event.FromString(raw)):
                break
            writer.write(raw)


def is_final_results(event: Event) -> bool:
    return any(value.metadata.plugin_data.plugin_name == HPARAMS_PLUGIN for value in event.summary.value)
