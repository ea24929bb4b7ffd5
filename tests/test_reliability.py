"""Reliability: reproducible runs, resuming after a crash or a signal, and nothing lost or overwritten."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import string
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from conftest import make_mnist_root, quick_overrides, run_command, start_command, train_in_process
from mnist_cnn.errors import EXIT_INTERRUPTED, UserError
from mnist_cnn.rundir import RunDir, atomic_file
from mnist_cnn.training.checks import check_config, prepare
from mnist_cnn.training.config import compose_config
from mnist_cnn.training.datasets import CATALOGUE, is_complete
from mnist_cnn.training.recipe import build_loggers

# Enough batches per epoch (1000 / 16) that a kill lands inside an epoch, small enough to stay quick.
DETERMINISTIC = ("data.val_size=200", "data.batch_size=16", "trainer.deterministic=true")


@pytest.fixture(scope="module", autouse=True)
def one_thread_per_process():
    """On two shared cores torch's default two threads per process run ten times slower than one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield


@pytest.fixture(scope="module")
def mnist_1200(tmp_path_factory) -> Path:
    return make_mnist_root(tmp_path_factory.mktemp("mnist_1200"), train=1200)


def train(data_root: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_command("mnist_cnn.train", *quick_overrides(data_root, *DETERMINISTIC, *extra), cwd=cwd)


def start_training(data_root: Path, cwd: Path, *extra: str) -> subprocess.Popen:
    return start_command("mnist_cnn.train", *quick_overrides(data_root, *DETERMINISTIC, *extra), cwd=cwd)


def wait_for(path_pattern: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Poll until a file matching the pattern exists, failing if the process ends first."""
    deadline = time.monotonic() + timeout
    while not list(path_pattern.parent.glob(path_pattern.name)):
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path_pattern} never appeared"
        time.sleep(0.02)


def results(run_dir: Path) -> dict:
    """Everything metrics.json reports except the wall time."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.pop("wall_time_s")
    return metrics


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(first: Path, second: Path) -> None:
    first_weights, second_weights = weights(first), weights(second)
    assert first_weights.keys() == second_weights.keys()
    for name in first_weights:
        assert torch.equal(first_weights[name], second_weights[name]), name


@pytest.fixture(scope="module")
def reference_run(mnist_1200, tmp_path_factory) -> Path:
    """An uninterrupted deterministic two-epoch run."""
    workdir = tmp_path_factory.mktemp("reference")
    result = train(mnist_1200, workdir, "hydra.run.dir=reference")
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / "reference"


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The failed command's last stderr line, after checking nothing else looks like a crash."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stderr.strip().splitlines()[-1]


# 1. Reproducible


@pytest.mark.slow
def test_same_seed_gives_identical_metrics_and_weights_in_two_processes(reference_run, mnist_1200, tmp_path):
    result = train(mnist_1200, tmp_path, "hydra.run.dir=again")
    assert result.returncode == 0, result.stderr[-3000:]
    assert results(tmp_path / "again") == results(reference_run)
    assert_same_weights(tmp_path / "again", reference_run)


# 2. Resume after a crash


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_to_the_same_result_as_an_uninterrupted_run(reference_run, mnist_1200, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "crashed"
    process = start_training(mnist_1200, tmp_path, f"hydra.run.dir={run_dir}")
    wait_for(run_dir / "checkpoints" / "last.ckpt", process)  # written at the end of epoch 1
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists()
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0

    resumed = run_command("mnist_cnn.train", f"resume={run_dir}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert results(run_dir)["epochs"] == 2
    assert results(run_dir) == results(reference_run)
    assert_same_weights(run_dir, reference_run)
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() != ""  # the original record is kept
    assert len(list((run_dir / ".hydra").glob("resumed_*/overrides.yaml"))) == 1

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) >= 2  # the same folder, both processes
    assert [event.step for event in events.Scalars("val/acc")] == [62, 125]  # one point per epoch, steps continue
    steps = [event.step for event in events.Scalars("train/loss")]
    assert steps == sorted(set(steps)) and steps[-1] >= 120


# A killed run logged 1.0 at steps 0-7; resumed from its checkpoint at step 5, it logs 0.0 at 5-9.
CURVE_RESUMED_AT_5 = [(step, 1.0) for step in range(5)] + [(step, 0.0) for step in range(5, 10)]


def log_a_run_and_its_resume_at_step_5(logger_kind: str, run_dir: Path, pause_between: float = 0.0) -> None:
    """A killed run may flush a few steps past its last checkpoint; the resumed run logs them again."""
    cfg = compose_config(f"logger={logger_kind}")
    for resume_step, steps in ((None, range(0, 8)), (5, range(5, 10))):
        (logger,) = build_loggers(cfg.logger, RunDir(run_dir), resume_step)
        for step in steps:
            logger.log_metrics({"train/loss_step": float(resume_step is None)}, step=step)
        logger.finalize("success")
        time.sleep(pause_between)


def test_resumed_tensorboard_curve_drops_the_points_logged_after_the_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_a_run_and_its_resume_at_step_5(
        "tensorboard", tmp_path, pause_between=1.1
    )  # event files are named by the second they were opened

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(event.step, event.value) for event in events.Scalars("train/loss_step")] == CURVE_RESUMED_AT_5


def test_resumed_csv_log_keeps_the_rows_before_the_checkpoint_and_drops_the_rest(tmp_path):
    """Lightning's CSVLogger deletes an existing metrics.csv; a resumed run must keep the finished epochs' rows."""
    import csv

    log_a_run_and_its_resume_at_step_5("csv", tmp_path)

    with (tmp_path / "csv" / "metrics.csv").open(newline="") as file:
        assert [(int(row["step"]), float(row["train/loss_step"])) for row in csv.DictReader(file)] == CURVE_RESUMED_AT_5


def prepare_resume(run_dir: Path, *overrides: str):
    """What `python -m mnist_cnn.train resume=<run_dir> <overrides>` trains with, or its UserError."""
    return prepare(compose_config(f"resume={run_dir}", *overrides), run_dir, [f"resume={run_dir}", *overrides])


def test_resume_refuses_overrides_that_change_the_experiment(trained_run):
    with pytest.raises(UserError, match=r"^model.dropout cannot change when resuming \(only trainer.max_epochs"):
        prepare_resume(trained_run, "model.dropout=0.5")


@pytest.fixture
def interrupted_run(trained_run, tmp_path) -> Path:
    """A copy of the trained run as a kill would have left it: checkpoints, no metrics.json yet."""
    run_dir = shutil.copytree(trained_run, tmp_path / "interrupted")
    (run_dir / "metrics.json").unlink()
    return run_dir


def test_resume_checks_before_touching_the_run(interrupted_run, tmp_path):
    with pytest.raises(UserError, match="max_epochs cannot change when resuming this run: its one_cycle schedule"):
        prepare_resume(interrupted_run, "trainer.max_epochs=4")
    resumed = prepare_resume(interrupted_run, "trainer.accelerator=cpu", "data.eval_batch_size=100")
    assert resumed.data.eval_batch_size == 100 and resumed.data.val_size == 100
    assert resumed.resume == str(interrupted_run.resolve())
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=f"resume={tmp_path.resolve() / 'empty'} has no checkpoints/last.ckpt"):
        prepare_resume(tmp_path / "empty")
    with pytest.raises(UserError, match=f"resume={tmp_path / 'nowhere'} is not a run directory"):
        prepare_resume(tmp_path / "nowhere")


def test_a_finished_run_resumes_only_to_train_further(trained_run, tiny_mnist, tmp_path):
    before = (trained_run / "metrics.json").read_text()
    with pytest.raises(
        UserError, match="finished all its 2 epochs: give trainer.max_epochs=<more> to train it further"
    ):
        prepare_resume(trained_run, "data.eval_batch_size=100")
    assert (trained_run / "metrics.json").read_text() == before
    further = shutil.copytree(trained_run, tmp_path / "further")
    config = OmegaConf.load(further / "config.yaml")
    config.scheduler = compose_config("scheduler=step").scheduler  # one-cycle's length could not grow
    OmegaConf.save(config, further / "config.yaml")
    train_in_process(further, f"resume={further}", "trainer.max_epochs=3")
    assert json.loads((further / "metrics_after_2_epochs.json").read_text()) == json.loads(before)
    assert json.loads((further / "metrics.json").read_text())["epochs"] == 3


def test_a_run_killed_before_its_first_checkpoint_says_how_to_start_it_again_in_place(tiny_mnist, tmp_path):
    run_dir = tmp_path / "early"
    (run_dir / ".hydra").mkdir(parents=True)
    overrides = quick_overrides(tiny_mnist, "optim.lr=0.002")
    OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    (run_dir / "checkpoints").mkdir()  # Lightning made the folder, nothing was saved yet
    with pytest.raises(UserError) as refused:
        prepare_resume(run_dir)
    command = str(refused.value).split("start it again in place with ")[1]
    assert shlex.split(command) == ["python", "-m", "mnist_cnn.train", f"hydra.run.dir={run_dir}", *overrides]
    assert prepare(compose_config(*overrides), run_dir).optim.lr == 0.002  # and that command is accepted


def test_two_runs_in_one_directory_at_once_are_refused(interrupted_run):
    with RunDir(interrupted_run).lock():
        with pytest.raises(UserError, match=f"another process is training {interrupted_run}"):
            train_in_process(interrupted_run, f"resume={interrupted_run}")
    assert not (interrupted_run / "metrics.json").exists()


# 3. Signals


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_last_checkpoint_and_says_how_to_resume(stop_signal, mnist_1200, tmp_path):
    run_dir = tmp_path / "stopped"
    process = start_training(mnist_1200, tmp_path, f"hydra.run.dir={run_dir}")
    wait_for(run_dir / "checkpoints" / "last.ckpt", process)  # epoch 1 is done: training is under way
    process.send_signal(stop_signal)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"training stopped by a signal after saving {run_dir}/checkpoints/last.ckpt; continue with: python -m "
        f"mnist_cnn.train resume={run_dir}"
    )
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    # Saved by the signal during the second epoch (the first epoch's own save says epoch 0); the
    # signal may land before that epoch's first step completes.
    assert checkpoint["epoch"] == 1 and 63 <= checkpoint["global_step"] < 126
    if stop_signal == signal.SIGTERM:
        resumed = run_command("mnist_cnn.train", f"resume={run_dir}", cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert results(run_dir)["epochs"] == 2 and results(run_dir)["status"] == "ok"


# 4. No run overwrites another


def test_training_into_an_existing_run_is_refused_and_leaves_it_alone(trained_run, tiny_mnist):
    before = {path: path.stat().st_mtime_ns for path in trained_run.rglob("*") if path.is_file()}
    with pytest.raises(UserError) as refused:
        prepare(compose_config(*quick_overrides(tiny_mnist)), trained_run)
    assert (
        str(refused.value)
        == f"{trained_run} already holds a run: continue it with resume={trained_run}, or choose a new hydra.run.dir"
    )
    assert {path: path.stat().st_mtime_ns for path in trained_run.rglob("*") if path.is_file()} == before


# 5. Data files


def test_truncated_idx_file_is_named_with_its_fix(tiny_mnist, tmp_path):
    root = shutil.copytree(tiny_mnist, tmp_path / "data")
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    with pytest.raises(UserError) as refused:
        prepare(compose_config(*quick_overrides(root)), tmp_path / "run")
    assert str(refused.value) == (
        f"{images} is truncated or corrupt (5000 bytes, header says {16 + 600 * 28 * 28}): "
        f"delete {images} and run again with data.download=true to fetch a fresh copy"
    )
    assert not (tmp_path / "run").exists()


def test_wrong_magic_number_is_refused_before_training(tiny_mnist, tmp_path):
    root = shutil.copytree(tiny_mnist, tmp_path / "data")
    labels = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(b"PK\x03\x04" + labels.read_bytes()[4:])
    with pytest.raises(UserError, match=f"{labels} is not an IDX file \\(wrong magic number\\): delete {labels}"):
        check_config(compose_config(*quick_overrides(root)))


def test_parallel_first_downloads_take_turns(tiny_mnist, tmp_path, monkeypatch):
    """Four jobs start on an empty root at once: one downloads, the others wait and reuse its files."""
    from mnist_cnn.training import data

    root, inside, calls = tmp_path / "data", [], []

    def slow_download(root_arg: str, train: bool, download: bool):
        inside.append(1)
        calls.append(len(inside))  # how many downloads are running at once
        time.sleep(0.2)
        make_mnist_root(Path(root_arg), train=600)  # torchvision's MNIST fetches all four files at once
        inside.pop()

    monkeypatch.setattr(data.torchvision.datasets, "MNIST", slow_download)
    jobs = [threading.Thread(target=data.download_once, args=(CATALOGUE["mnist"], root)) for _ in range(4)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    assert calls == [1]
    assert is_complete(CATALOGUE["mnist"], root)


# 6. Unwritable output, failed checkpoint save


def test_unwritable_run_directory_is_one_clear_line(tiny_mnist, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(
        UserError, match=f"^cannot create the run directory {blocker}/run \\(Not a directory\\): set hydra.run.dir"
    ):
        prepare(compose_config(*quick_overrides(tiny_mnist)), blocker / "run")


def test_failed_checkpoint_save_keeps_the_earlier_checkpoint(tmp_path):
    from mnist_cnn.training.checkpoints import AtomicCheckpointIO

    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(1)}, path)
    with pytest.raises(UserError, match=f"could not save checkpoint {path} .*earlier checkpoints are intact"):
        AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(2), "unpicklable": lambda: None}, path)
    assert torch.load(path, weights_only=True)["step"] == 1
    assert list(tmp_path.iterdir()) == [path]


def test_two_writers_saving_one_file_at_once_each_rename_a_whole_file(tmp_path):
    """Two resumes of one sweep rewrite its plan together: a shared partial file made the later rename fail."""
    path = tmp_path / "sweep_plan.json"
    with atomic_file(path) as first:
        first.write(b"first")
        with atomic_file(path) as second:
            second.write(b"second")
        assert path.read_bytes() == b"second"
    assert path.read_bytes() == b"first"
    assert list(tmp_path.iterdir()) == [path]


# 7. Safe loading


class Payload:
    """Stands in for arbitrary code a tampered checkpoint could carry."""


def test_resume_refuses_a_checkpoint_carrying_pickled_objects(interrupted_run):
    run_dir = interrupted_run
    last = run_dir / "checkpoints" / "last.ckpt"
    torch.save({**torch.load(last, weights_only=True), "payload": Payload()}, last)
    with pytest.raises(UserError, match=f"^{last} cannot be loaded safely \\(Weights only load failed"):
        train_in_process(run_dir, f"resume={run_dir}")


# 8. Any numeric override: a run or one line, never a traceback

OVERRIDE_KEYS = ("optim.lr", "data.batch_size", "model.dropout", "trainer.max_epochs", "data.val_size")
VALUES = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-1", "nan", "inf", "1e400", "null", "true", "fast", "''", "[1,2]"]),
    st.text(alphabet=string.ascii_letters, min_size=1, max_size=8),
)
OVERRIDES = st.lists(
    st.tuples(st.sampled_from(OVERRIDE_KEYS), VALUES), min_size=1, max_size=3, unique_by=lambda pair: pair[0]
)


@given(OVERRIDES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_override_values_pass_the_checks_or_raise_one_line(tiny_mnist, overrides):
    cfg = compose_config(*quick_overrides(tiny_mnist, *(f"{key}={value}" for key, value in overrides)))
    try:
        check_config(cfg)
    except UserError as error:
        assert "\n" not in str(error) and any(key in str(error) for key, _ in overrides)


@pytest.mark.slow
@given(OVERRIDES)
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_override_values_end_in_a_run_or_one_line_error(tiny_mnist, tmp_path_factory, overrides):
    workdir = tmp_path_factory.mktemp("property")
    result = run_command(
        "mnist_cnn.train",
        *quick_overrides(tiny_mnist, "trainer=debug", *(f"{key}={value}" for key, value in overrides)),
        cwd=workdir,
    )
    if result.returncode == 0:
        assert list((workdir / "outputs" / "runs").glob("*/metrics.json"))
    else:
        assert one_line_error(result).startswith("error: ")
