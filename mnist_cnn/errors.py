"""The one exception type that entry points turn into a one-line message."""


class UserError(ValueError):
    """Bad input the user can fix: a config value, a data file, a run directory.

    Entry points print its message on one line and exit with status 2, instead of a traceback.
    """
