"""One command-line style for every command: Hydra-style `key=value` arguments, `--help`, one-line errors.

`train` is a Hydra app; the commands that read a finished run (evaluate, report, predict, export,
serve, calibrate) take the same `key=value` spelling through `parse_arguments`, which refuses unknown
keys instead of ignoring them.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnist_cnn.errors import EXIT_USER_ERROR, UserError, first_line


@dataclass(frozen=True)
class Option:
    """One `key=value` argument of a command."""

    help: str
    required: bool = False
    default: Any = None


@dataclass(frozen=True)
class Command:
    """What a command is called, what it does, and the arguments it takes."""

    name: str
    summary: str
    options: dict[str, Option]
    shorthands: dict[str, str] = field(default_factory=dict)  # Hydra's `group=option`: data=usps for data.name=usps

    def help_text(self) -> str:
        width = max(len(key) for key in self.options) + 2
        lines = [
            f"usage: python -m mnist_cnn.{self.name} " + " ".join(self.usage_words()),
            "",
            self.summary,
            "",
            "arguments:",
        ]
        for key, option in self.options.items():
            note = (
                "required"
                if option.required
                else "optional"
                if option.default is None
                else f"default: {option.default}"
            )
            lines.append(f"  {key:<{width}}{option.help} ({note})")
        return "\n".join(lines)

    def usage_words(self) -> list[str]:
        return [f"{key}=..." if option.required else f"[{key}=...]" for key, option in self.options.items()]


def flat_keys(args: DictConfig) -> list[str]:
    """`data.root=x` -> ["data.root"]: dotted keys, as the user typed them."""
    keys = []
    for key, value in args.items():
        if isinstance(value, DictConfig):
            keys += [f"{key}.{inner}" for inner in flat_keys(value)]
        else:
            keys.append(str(key))
    return keys


def unknown_key_error(key: str, command: Command) -> UserError:
    close = difflib.get_close_matches(key, command.options, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}?" if close else f"known keys: {', '.join(command.options)}"
    return UserError(f"{key} is not an argument of {command.name}: {hint} (see --help)")


def spelled_out(word: str, shorthands: dict[str, str]) -> str:
    """`data=usps` as `data.name=usps`: OmegaConf would let data=usps and data.split=x clobber each other."""
    key, value = word.split("=", 1)
    return f"{shorthands.get(key, key)}={value}"


def parse_arguments(command: Command, argv: list[str] | None = None) -> DictConfig:
    """The command's arguments (sys.argv by default), defaults filled in; `--help` prints the options and exits 0."""
    argv = sys.argv[1:] if argv is None else argv
    if any(word in ("-h", "--help") for word in argv):
        print(command.help_text())
        sys.exit(0)
    for word in argv:
        if "=" not in word:
            raise UserError(
                f"{word!r} is not a key=value argument: usage: python -m mnist_cnn.{command.name} "
                f"{' '.join(command.usage_words())}"
            )
    argv = [spelled_out(word, command.shorthands) for word in argv]
    try:
        args = OmegaConf.from_dotlist(argv)
    except Exception as error:  # OmegaConf's grammar errors: an unbalanced ${, a bad key
        raise UserError(f"cannot parse the arguments ({first_line(error)}): write them as key=value") from error
    for key in flat_keys(args):
        if key not in command.options:
            raise unknown_key_error(key, command)
    for key, option in command.options.items():
        value = OmegaConf.select(args, key)
        if option.required and value in (None, ""):
            raise UserError(f"{key}= is required: {option.help} (see --help)")
        if value is None:
            OmegaConf.update(args, key, option.default, force_add=True)
        else:
            check_kind(key, value, option.default)
    return args


def check_kind(key: str, value: Any, default: Any) -> None:
    """A value given for an option whose default is a flag or a number must be one too."""
    if isinstance(default, bool) and not isinstance(value, bool):
        raise UserError(f"{key}={value} is invalid: give true or false")
    if isinstance(default, int | float) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{key}={value} is invalid: give a number")


def writable_file(path: Path) -> bool:
    """Whether a command could write `path` in its existing folder: checked before minutes of work, not after."""
    folder = path.parent
    return not path.is_dir() and os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def whole_number(args: Any, key: str, default: int | None, least: int = 1) -> int | None:
    """A count argument (or a seed, from `least=0`): a whole number >= `least` (or its default), or one line
    saying so."""
    value = args.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
        raise UserError(f"{key}={value} is invalid: give a whole number >= {least}")
    return value


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a UserError into one `error: ...` line on stderr and exit status 2."""
    try:
        yield
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
