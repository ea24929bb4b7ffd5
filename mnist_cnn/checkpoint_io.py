"""Checkpoint writing that never leaves a half-written file where a good checkpoint was."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from mnist_cnn.errors import UserError, first_line


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save to `<path>.partial` beside the target, then rename it over the target.

    A rename within one folder is atomic, so a crash, a full disk or an unpicklable object
    leaves the previous `last.ckpt` and best checkpoint intact. (Lightning's own transaction
    writes into the system temp folder and copies across file systems, which is not atomic.)
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        except Exception as error:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise UserError(f"could not save checkpoint {path} ({first_line(error)}): check free space and permissions there; earlier checkpoints are intact") from error
