"""The commands as a user types them: one key=value style, --help, one-line errors with documented exit statuses."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO, command_env, run_command
from mnist_cnn.cli import Command, Option, parse_arguments
from mnist_cnn.errors import EXIT_SOME_FAILED, EXIT_USER_ERROR, UserError
from mnist_cnn.training.checks import check_override_keys
from mnist_cnn.training.config import CONFIG_DIR, describe_groups

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
    assert result.stderr.strip() == "error: optim.lr=0 is invalid: should be greater than 0"
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


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optim.lrr=0.1"], "optim.lrr is not a config key: did you mean optim.lr?"),
        (["+optim.lrr=0.1"], "optim.lrr is not a config key: did you mean optim.lr?"),
        (["model=cnn3", "model.width=3"], "model.width is not a config key"),
        (
            ["-m", "optim.lr=0.1,0.2", "data.batchsize=32,64"],
            "data.batchsize is not a config key: did you mean data.batch_size",
        ),
        (["trainer.limit_train_batches=3"], "trainer.limit_train_batches is not a config key"),
    ],
)
def test_a_mistyped_key_is_refused_with_the_closest_keys(overrides, message):
    with pytest.raises(UserError) as refused:
        check_override_keys(overrides)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["optim.lr=0.1,0.2", "model=cnn3", "model.dropout=0.7"],
        ["+trainer.limit_train_batches=3", "++trainer.fast_dev_run=true"],
        ["logger.tensorboard=null", "callbacks.lr_monitor=null"],
        ["logger=[]"],
        ["+sweep=quick", "experiment=fast", "model.stem=strided", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
        ["model=resnet9000"],  # an unknown option: Hydra's own message names the options
    ],
)
def test_known_keys_group_options_and_trainer_pass_throughs_are_let_through(overrides):
    check_override_keys(overrides)


def test_train_help_lists_every_group_with_each_option_and_its_comment():
    text = describe_groups()
    for group in ("model", "optim", "scheduler", "data", "trainer", "logger", "callbacks", "experiment", "sweep"):
        assert f"\n{group}:" in f"\n{text}", group
    assert "  fast (default)  a small BatchNorm CNN" in text
    assert "  cnn3            the deepest" in text
    assert (
        "sweep:  (off unless chosen: +sweep=<option>)" in text
        and "experiment:  (off unless chosen: experiment=" in text
    )


@pytest.mark.slow
def test_train_help_exits_0_with_the_groups(tmp_path):
    result = run_command("mnist_cnn.train", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "== Config groups (group=option) ==" in result.stdout and "onecycle (default)" in result.stdout
    assert 'eval "$(mnist-train -sc install=bash)"' in result.stdout


@pytest.mark.slow
def test_tab_completion_of_mnist_train_answers_through_hydra(tmp_path):
    script = REPO / ".venv" / "bin" / "mnist-train"
    if not script.is_file():
        pytest.skip(f"no console script at {script}: the README's set-up installs it")
    env = {**command_env(), "COMP_LINE": "mnist-train model=c", "COMP_POINT": "19"}
    result = subprocess.run(
        [script, "-sc", "query=bash"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split() == ["model=cnn1", "model=cnn2", "model=cnn3"], result.stderr[-2000:]


@pytest.mark.slow
def test_a_built_wheel_carries_the_configs_and_trains_from_any_folder(tmp_path):
    """`pip install .` (not -e) must work: the configs ship inside the package."""
    wheels = tmp_path / "wheels"
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(wheels),
        str(REPO),
    ]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("mnist_cnn-*.whl")
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(installed)
    for config in CONFIG_DIR.rglob("*.yaml"):
        assert f"mnist_cnn/conf/{config.relative_to(CONFIG_DIR)}" in names, config
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(installed)}
    probe = [sys.executable, "-c", "import mnist_cnn; print(mnist_cnn.__file__)"]
    assert subprocess.run(probe, cwd=elsewhere, env=env, capture_output=True, text=True).stdout.startswith(
        str(installed)
    )
    job = subprocess.run(
        [sys.executable, "-m", "mnist_cnn.train", "--cfg", "job"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert job.returncode == 0, job.stderr[-2000:]
    assert "_target_: mnist_cnn.training.models.FastCNN" in job.stdout


@pytest.mark.slow
def test_a_sweep_whose_every_job_failed_exits_non_zero(tiny_mnist, tmp_path):
    overrides = [f"data.root={tiny_mnist}", "data.download=false", "data.val_size=100", "optim.lr=0,-1"]
    result = run_command("mnist_cnn.train", "-m", *overrides, cwd=tmp_path)
    assert result.returncode == EXIT_SOME_FAILED
    assert result.stderr.strip().splitlines()[-1].startswith("error: every job of the sweep failed")
