"""Checkpoints: written atomically, read safely, and loaded only into the network they were saved from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import DictConfig

from mnist_cnn.errors import UserError, first_line
from mnist_cnn.rundir import RunDir, atomic_file
from mnist_cnn.training.config import load_run_config
from mnist_cnn.training.module import DigitClassifier


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save through `rundir.atomic_file`: a crash, a full disk or an unpicklable object keeps the earlier checkpoint.

    (Lightning's own transaction writes into the system temp folder and copies across file
    systems, which is not atomic.)
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        try:
            with atomic_file(Path(path)) as handle:
                torch.save(checkpoint, handle)
        except Exception as error:
            raise UserError(
                f"could not save checkpoint {path} ({first_line(error)}): check free space and permissions "
                "there; earlier checkpoints are intact"
            ) from error


def load_checkpoint(path: Path) -> dict:
    """torch.load with weights_only=True: a checkpoint carrying arbitrary pickled objects is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(
            f"{path} cannot be loaded safely ({first_line(error)}): use a checkpoint written by mnist_cnn.train"
        ) from error


def state_dict_problem(error: RuntimeError, limit: int = 120) -> str:
    """The first missing, unexpected or mis-shaped weight from torch's multi-line load_state_dict error."""
    details = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
    problem = details[0] if details else first_line(error)
    return problem if len(problem) <= limit else problem[: limit - 3] + "..."


OLDER_LAYOUT = "it was written by an older mnist_cnn; train the run again"


def load_weights(module: DigitClassifier, path: Path, if_it_does_not_fit: str = OLDER_LAYOUT) -> dict:
    """Load a checkpoint's weights into the module its run's config builds; returns the checkpoint.

    Weights of another architecture, or of an older layout of the same one (FastCNN once pooled
    after ReLU), fail here with one line, ending in `if_it_does_not_fit`, instead of torch's list
    of missing and unexpected keys.
    """
    checkpoint = load_checkpoint(path)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        model = module.hparams.model["_target_"].rsplit(".", 1)[-1]
        raise UserError(
            f"{path} does not fit the {model} its run's config.yaml describes ({state_dict_problem(error)}): "
            f"{if_it_does_not_fit}"
        ) from error
    return checkpoint


def load_initial_weights(module: DigitClassifier, init_from: Path) -> None:
    """`init_from=`: start a new run from another run's best weights, or from a checkpoint file."""
    path = RunDir(init_from).best_checkpoint() if init_from.is_dir() else init_from
    load_weights(module, path, "init_from needs weights of the same model, with the same model.* settings")


def load_run_module(run_dir: Path, checkpoint: Path | None = None) -> tuple[DictConfig, DigitClassifier]:
    """A finished run's config and its module with the best (or the given) weights, in eval mode on the CPU.

    Downstream commands rebuild the model from what the run saved, never from the current command line.
    """
    run = RunDir(run_dir)
    cfg = load_run_config(run)
    module = DigitClassifier.from_config(cfg)
    load_weights(module, checkpoint or run.best_checkpoint())
    return cfg, module.eval()
