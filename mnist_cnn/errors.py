"""What a command can tell its user instead of a traceback, and the exit status it says it with.

Exit statuses, the same for every command:
    0  done
    1  done, but some of the work failed: predict's unreadable images (each with its own `error:`
       line), or a sweep in which every job failed (the summary says why)
    2  a user error: a bad config value, key, data file or run directory (one `error:` line)
    3  training stopped by a signal after saving `last.ckpt` (the line says how to resume)
Hydra's own complaints about composing `train`'s config (an unknown group option, a malformed
override) keep Hydra's message and its exit status 1, as does a crash (a bug, with its traceback).
"""

EXIT_SOME_FAILED = 1
EXIT_BUG = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 3


class UserError(ValueError):
    """Bad input the user can fix: a config value, a data file, a run directory."""


class RunBusy(UserError):
    """Another process holds the run directory's lock: it is training there now."""


class TrainingInterrupted(Exception):
    """SIGTERM (e.g. SLURM preemption) or Ctrl+C stopped training after last.ckpt was saved."""


def first_line(error: BaseException) -> str:
    """The gist of a library's exception, for a one-line message that wraps it."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def last_line(error: BaseException) -> str:
    """The cause at the end of a multi-line message (torchvision's failed download lists every mirror it tried)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
