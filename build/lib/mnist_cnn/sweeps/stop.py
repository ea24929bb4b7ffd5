"""Stopping a sweep as a whole: SIGTERM or Ctrl+C ends it within seconds, and what finished is kept.

During a job's training Lightning's own handler stops after the current batch and the job saves its
last.ckpt; between jobs the handler here notes the request. Either way the remaining jobs return
at once, the summary covers what finished, and the command to continue the interrupted job is
printed. This holds for Hydra's basic launcher, which runs the jobs in this process.
"""

from __future__ import annotations

import shlex
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType


@dataclass
class StopRequest:
    requested: bool = False
    interrupted: list[Path] = field(default_factory=list)  # jobs stopped mid-training, resumable

    def note(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def watch_signals(self) -> None:
        """Note SIGTERM and SIGINT instead of dying between jobs (Lightning takes over during training)."""
        if threading.current_thread() is threading.main_thread():
            for stop_signal in (signal.SIGTERM, signal.SIGINT):
                signal.signal(stop_signal, self.note)

    def resume_commands(self) -> list[str]:
        """Commands that continue each interrupted job; quoted, since job folders hold `=` and `,`."""
        return [
            f"python -m mnist_cnn.train {shlex.quote(f'resume={chr(34)}{job}{chr(34)}')}" for job in self.interrupted
        ]


STOP = StopRequest()
