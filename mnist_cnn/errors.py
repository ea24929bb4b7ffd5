"""The exception types that entry points turn into a one-line message instead of a traceback."""


class UserError(ValueError):
    """Bad input the user can fix: a config value, a data file, a run directory.

    Entry points print its message on one line and exit with status 2, instead of a traceback.
    """


class TrainingInterrupted(Exception):
    """SIGTERM (e.g. SLURM preemption) or Ctrl+C stopped training after last.ckpt was saved."""


def first_line(error: BaseException) -> str:
    """The gist of a library's exception, for a one-line message that wraps it."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
