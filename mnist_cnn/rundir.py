"""Reading a finished run directory: its saved config and its best weights.

Downstream commands (evaluate, and later predict, export, the sweep report) rebuild the model
from what the run saved, never from the current command line.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from mnist_cnn.errors import UserError, first_line
from mnist_cnn.module import DigitClassifier
from mnist_cnn.reporting import METRICS_FILE, read_metrics

CONFIG_FILE = "config.yaml"
CHECKPOINT_DIR = "checkpoints"


def load_run_config(run_dir: Path) -> DictConfig:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{run_dir} is not a run directory (no {CONFIG_FILE}): pass run_dir=<a folder under outputs/>")
    return OmegaConf.load(path)


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint metrics.json names as best, else the newest non-last checkpoint."""
    if (run_dir / METRICS_FILE).is_file():
        named = read_metrics(run_dir).get("best_checkpoint")
        if named and (run_dir / named).is_file():
            return run_dir / named
    candidates = sorted((run_dir / CHECKPOINT_DIR).glob("best*.ckpt"), key=lambda path: path.stat().st_mtime)
    if not candidates:
        raise UserError(f"{run_dir} has no best checkpoint in {CHECKPOINT_DIR}/: train it to the end first")
    return candidates[-1]


def load_checkpoint(path: Path) -> dict:
    """torch.load with weights_only=True: a checkpoint carrying arbitrary pickled objects is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(f"{path} cannot be loaded safely ({first_line(error)}): use a checkpoint written by mnist_cnn.train") from error


def load_weights(module: DigitClassifier, path: Path) -> dict:
    """Load a checkpoint's weights into the module its run's config builds; returns the checkpoint.

    A checkpoint from an older layout of the same architecture (FastCNN once pooled after ReLU)
    fails here with one line instead of torch's list of missing and unexpected keys.
    """
    checkpoint = load_checkpoint(path)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        model = module.hparams.model["_target_"].rsplit(".", 1)[-1]
        raise UserError(f"{path} does not fit the {model} its run's config.yaml describes ({state_dict_problem(error)}): it was written by an older mnist_cnn; train the run again") from error
    return checkpoint


def state_dict_problem(error: RuntimeError, limit: int = 120) -> str:
    """The first missing, unexpected or mis-shaped weight from torch's multi-line load_state_dict error."""
    details = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
    problem = details[0] if details else first_line(error)
    return problem if len(problem) <= limit else problem[: limit - 3] + "..."


def load_run_module(run_dir: Path) -> tuple[DictConfig, DigitClassifier]:
    """The run's config and its module with the best weights, in eval mode on the CPU."""
    cfg = load_run_config(run_dir)
    module = DigitClassifier.from_config(cfg)
    load_weights(module, best_checkpoint(run_dir))
    return cfg, module.eval()
