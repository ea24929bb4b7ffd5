"""Stopping a sweep as a whole: SIGTERM or Ctrl+C ends it within seconds, and what finished is kept.

During a job's training Lightning's own handler stops after the current batch and the job saves its
last.ckpt; between jobs the handler here notes the request. Either way the remaining jobs return
at once, the grid sweeper launches no further batch, the summary covers what finished, and the
command that resumes the sweep is printed (sweeps/resume.py).

With Hydra's basic launcher the jobs run in the sweep's own process. With joblib's they run in its
child processes: the sweeper passes a SIGTERM on to those that handle it (a worker still starting
would die of it), and writes the sweep's stop file, so that jobs starting later return at once too,
on any launcher that shares the sweep directory. A resumed sweep removes the file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType


@dataclass
class StopRequest:
    requested: bool = False
    stop_file: Path | None = None  # the sweep's, written by the sweep's own process when a signal comes

    def note(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def note_and_pass_on(self, signum: int, frame: FrameType | None) -> None:
        """The sweep's own process: mark the sweep stopped for the jobs yet to start, and stop the running ones."""
        self.note(signum, frame)
        if self.stop_file:
            with contextlib.suppress(OSError):  # the running jobs are stopped all the same
                self.stop_file.touch()
        for child in child_processes():
            if handles(child, signal.SIGTERM):
                with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                    os.kill(child, signal.SIGTERM)

    def watch_signals(self, stop_file: Path | None = None) -> None:
        """Note SIGTERM and SIGINT instead of dying between jobs (Lightning takes over during training).

        The sweeper gives its `stop_file`: it writes it on a signal and passes the signal on to its workers.
        """
        if threading.current_thread() is threading.main_thread():
            self.stop_file = stop_file
            for stop_signal in (signal.SIGTERM, signal.SIGINT):
                signal.signal(stop_signal, self.note_and_pass_on if stop_file else self.note)

    def stopped(self, stop_file: Path) -> bool:
        """Whether this process, or the sweep's own, was asked to stop."""
        return self.requested or stop_file.is_file()


def child_processes() -> list[int]:
    """The process ids of this process's children, from /proc (Linux; none elsewhere)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):  # ended meanwhile, or not readable
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                children.append(int(stat.parent.name))
    return children


def handles(pid: int, signum: int) -> bool:
    """Whether a process has a handler for the signal (so it will not die of it): SigCgt in /proc/<pid>/status."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        caught = next(line for line in status if line.startswith("SigCgt:")).split()[1]
        return bool(int(caught, 16) >> (signum - 1) & 1)
    return False


STOP = StopRequest()
