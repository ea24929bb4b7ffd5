"""Stopping a sweep as a whole: SIGTERM or Ctrl+C ends it within seconds, and what finished is kept.

During a job's training Lightning's own handler stops after the current batch and the job saves its
last.ckpt; between jobs the handler here notes the request. Either way the remaining jobs return
at once, the grid sweeper launches no further batch, the summary covers what finished, and the
command that resumes the sweep is printed (sweeps/resume.py). This holds for Hydra's basic
launcher, which runs the jobs in this process; other launchers' running jobs finish first.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from types import FrameType


@dataclass
class StopRequest:
    requested: bool = False

    def note(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def watch_signals(self) -> None:
        """Note SIGTERM and SIGINT instead of dying between jobs (Lightning takes over during training)."""
        if threading.current_thread() is threading.main_thread():
            for stop_signal in (signal.SIGTERM, signal.SIGINT):
                signal.signal(stop_signal, self.note)


STOP = StopRequest()
