"""Training end to end: a tiny run in-process, evaluate, reload, and bad input refused before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import quick_overrides, run_command, train_in_process

from mnist_cnn.errors import EXIT_USER_ERROR, UserError
from mnist_cnn.evaluate import evaluate_run
from mnist_cnn.training.checks import prepare
from mnist_cnn.training.config import compose_config

REQUIRED_METRICS = {"train/acc", "val/acc", "test/acc", "test/loss", "epochs", "params", "wall_time_s", "status"}


@pytest.fixture(scope="module")
def finished_run(tiny_mnist, tmp_path_factory) -> Path:
    """One short training run shared by the tests that inspect its outputs."""
    return train_in_process(tmp_path_factory.mktemp("work") / "run", *quick_overrides(tiny_mnist))


def test_run_writes_metrics_checkpoints_config_and_tensorboard(finished_run):
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert REQUIRED_METRICS <= metrics.keys()
    assert metrics["status"] == "ok" and metrics["epochs"] == 2 and metrics["params"] > 0
    for key in ("train/acc", "val/acc", "test/acc"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["test/acc"] > 0.5  # the synthetic classes are easy: training must have learned
    assert (finished_run / "checkpoints" / "last.ckpt").is_file()
    assert (finished_run / metrics["best_checkpoint"]).is_file() and metrics["best_checkpoint"].startswith(
        "checkpoints/best-epoch"
    )
    assert (finished_run / "config.yaml").is_file()
    assert list((finished_run / "tensorboard").glob("events.out.tfevents.*"))


def test_tensorboard_has_curves_learning_rate_and_real_hparams(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(finished_run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss_step", "train/loss_epoch", "train/acc_step", "train/acc_epoch", "val/acc", "val/loss"} <= tags
    assert any(tag.startswith("lr-") for tag in tags)
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert events.Scalars("hparams/test_acc")[-1].value == pytest.approx(metrics["test/acc"])
    assert "hp_metric" not in tags


def test_evaluate_agrees_with_training(finished_run):
    evaluation = evaluate_run(finished_run)
    assert json.loads((finished_run / "eval.json").read_text()) == evaluation
    assert evaluation["test/acc"] == json.loads((finished_run / "metrics.json").read_text())["test/acc"]


def test_checkpoints_hold_plain_hyperparameters_and_load_weights_only(finished_run):
    for checkpoint in (finished_run / "checkpoints").glob("*.ckpt"):
        loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
        assert loaded["hyper_parameters"]["model"]["_target_"] == "mnist_cnn.training.models.FastCNN"


def test_weights_of_an_older_layout_fail_with_one_line(finished_run, tmp_path):
    """FastCNN once pooled after ReLU: its BatchNorm weights sat one layer earlier."""
    run_dir = shutil.copytree(finished_run, tmp_path / "older")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    best = run_dir / metrics["best_checkpoint"]
    checkpoint = torch.load(best, weights_only=True)
    checkpoint["state_dict"] = {
        name.replace("layers.2.", "layers.1."): value for name, value in checkpoint["state_dict"].items()
    }
    torch.save(checkpoint, best)
    with pytest.raises(UserError, match=f"{best} does not fit the FastCNN its run's config.yaml describes") as refused:
        evaluate_run(run_dir)
    assert "\n" not in str(refused.value)


def test_a_moved_run_still_finds_its_best_checkpoint(finished_run, tmp_path):
    moved = shutil.copytree(finished_run, tmp_path / "elsewhere" / "run")
    assert evaluate_run(moved)["checkpoint"].startswith(str(moved))


@pytest.mark.slow
def test_runs_never_share_a_directory(tiny_mnist, tmp_path):
    first = run_command("mnist_cnn.train", *quick_overrides(tiny_mnist, "trainer=debug"), cwd=tmp_path)
    second = run_command("mnist_cnn.train", *quick_overrides(tiny_mnist, "trainer=debug"), cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-2000:]
    assert len(list((tmp_path / "outputs" / "runs").iterdir())) == 2


BAD_VALUES = [
    ("optim.lr=0", "optim.lr=0 is invalid: allowed values are a finite number > 0"),
    ("optim.lr=-0.1", "optim.lr=-0.1 is invalid"),
    ("data.batch_size=0", "data.batch_size=0 is invalid: allowed values are an integer >= 1"),
    ("model.dropout=1.0", "model.dropout=1.0 is invalid: allowed values are a number in [0, 1)"),
    ("model.dropout=-0.2", "model.dropout=-0.2 is invalid"),
    ("data.val_size=600", "data.val_size=600 is invalid: allowed values are an integer from 1 to 599"),
    ("model.width=0", "model.width=0 is invalid: allowed values are an integer >= 1"),
    ("model.stem=conv", "model.stem=conv is invalid: allowed values are pool or strided"),
    ("data.augment=blur", "data.augment=blur is invalid: allowed values are none or shift or affine or wild"),
    (
        "callbacks.progress.style=fancy",
        "callbacks.progress.style=fancy is invalid: allowed values are auto or bar or log",
    ),
    ("trainer.max_epochs=0", "trainer.max_epochs=0 is invalid: allowed values are an integer >= 1"),
    ("optim.lr=fast", "optim.lr='fast' is not a number"),
]


@pytest.mark.parametrize("override, message", BAD_VALUES)
def test_bad_values_are_refused_with_one_line_before_the_run_directory_exists(override, message, tiny_mnist, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(UserError) as refused:
        prepare(compose_config(*quick_overrides(tiny_mnist, override)), run_dir)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert not run_dir.exists()


@pytest.mark.slow
@pytest.mark.parametrize("override, message", [BAD_VALUES[0], BAD_VALUES[-1]])
def test_the_command_refuses_bad_values_with_one_line_and_no_output(override, message, tiny_mnist, tmp_path):
    result = run_command("mnist_cnn.train", *quick_overrides(tiny_mnist, override), cwd=tmp_path)
    assert result.returncode == EXIT_USER_ERROR
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {message}")
    assert not (tmp_path / "outputs").exists()


def test_missing_data_without_download_is_refused(tmp_path):
    images = tmp_path / "nowhere" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    with pytest.raises(UserError) as refused:
        prepare(compose_config(*quick_overrides(tmp_path / "nowhere")), tmp_path / "run")
    assert str(refused.value) == (
        f"{images} is missing and data.download=false: set data.download=true, or point data.root at a folder "
        "holding torchvision's MNIST files"
    )


@pytest.mark.slow
def test_unknown_group_option_keeps_hydras_message(tiny_mnist, tmp_path):
    result = run_command("mnist_cnn.train", *quick_overrides(tiny_mnist, "model=resnet9000"), cwd=tmp_path)
    assert result.returncode != 0
    assert "Could not find 'model/resnet9000'" in result.stderr


@pytest.mark.slow
def test_cnn3_with_adam_reaches_98_percent_in_one_epoch_on_real_mnist(real_mnist, tmp_path):
    result = run_command(
        "mnist_cnn.train",
        "model=cnn3",
        "optim=adam",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        f"data.root={real_mnist}",
        "data.download=false",
        cwd=tmp_path,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["test/acc"] >= 0.98
