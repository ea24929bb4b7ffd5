"""The commands as a user types them: one key=value style, --help, one-line errors with documented exit statuses."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO, command_env, run_command

from mnist_cnn.cli import Command, Option, parse_arguments
from mnist_cnn.errors import EXIT_USER_ERROR, UserError

COMMANDS = ("evaluate", "report", "predict", "export", "serve")
EXAMPLE = Command(
    "example",
    "An example.",
    {"run_dir": Option("a run", required=True), "data.root": Option("a root"), "port": Option("a port", default=8000)},
)


def test_arguments_get_their_defaults_and_nested_keys():
    args = parse_arguments(EXAMPLE, ["run_dir=a", "data.root=b"])
    assert args.run_dir == "a" and args.data.root == "b" and args.port == 8000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run_dir=a", "ckpt_path=b"], "ckpt_path is not an argument of example: known keys: run_dir, data.root, port"),
        (["run_dirr=a"], "run_dirr is not an argument of example: did you mean run_dir?"),
        (["data.roots=a", "run_dir=a"], "data.roots is not an argument of example: did you mean data.root?"),
        (["port=1"], "run_dir= is required"),
        (["outputs/run"], "'outputs/run' is not a key=value argument"),
    ],
)
def test_bad_arguments_are_one_line_user_errors(argv, message):
    with pytest.raises(UserError) as refused:
        parse_arguments(EXAMPLE, argv)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_a_group_shorthand_and_its_keys_can_be_given_together():
    """`data=emnist data.split=digits` as for train: OmegaConf alone would drop one of the two."""
    command = Command(
        "example", "An example.", {"data.name": Option("a set"), "data.split": Option("a split")}, {"data": "data.name"}
    )
    for argv in (["data=emnist", "data.split=digits"], ["data.split=digits", "data=emnist"]):
        args = parse_arguments(command, argv)
        assert args.data.name == "emnist" and args.data.split == "digits"


def test_help_lists_every_argument_and_exits_0(capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_arguments(EXAMPLE, ["--help"])
    assert stopped.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m mnist_cnn.example run_dir=... [data.root=...] [port=...]")
    assert "(required)" in text and "(default: 8000)" in text


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_refuses_unknown_keys(command, tmp_path):
    helped = run_command(f"mnist_cnn.{command}", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and helped.stdout.startswith(f"usage: python -m mnist_cnn.{command}")
    refused = run_command(f"mnist_cnn.{command}", "nonsense=1", cwd=tmp_path)
    assert refused.returncode == EXIT_USER_ERROR
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()] and refused.stderr.startswith(
        "error: nonsense is not an argument"
    )


@pytest.mark.slow
def test_a_bad_value_is_refused_without_importing_torch(tmp_path):
    """The config checks and the Hydra callback that runs them must not import torch or Lightning."""
    probe = (
        "import sys; sys.argv = ['train', 'optim.lr=0']\n"
        "from mnist_cnn.train import main\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    print(stop.code, 'torch' in sys.modules, "
        "'pytorch_lightning' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=command_env(), capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split() == [str(EXIT_USER_ERROR), "False", "False"], result.stderr[-2000:]
    assert result.stderr.strip() == "error: optim.lr=0 is invalid: allowed values are a finite number > 0"
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_console_scripts_are_installed_beside_python_m():
    scripts = REPO / ".venv" / "bin"
    if not scripts.is_dir():
        pytest.skip(f"no virtual environment at {scripts}: the README's set-up makes one")
    for command in ("train", *COMMANDS):
        assert (scripts / f"mnist-{command}").is_file(), command
    result = subprocess.run([scripts / "mnist-evaluate", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "run_dir" in result.stdout
