"""End to end as a user runs it: train on tiny IDX data, evaluate, reload, and refuse bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import quick_overrides, run_command

REQUIRED_METRICS = {"train/acc", "val/acc", "test/acc", "test/loss", "epochs", "params", "wall_time_s", "status"}


@pytest.fixture(scope="module")
def finished_run(tiny_mnist, tmp_path_factory) -> Path:
    """One short training run shared by the tests that inspect its outputs."""
    workdir = tmp_path_factory.mktemp("work")
    result = run_command("mnist_cnn.train", *quick_overrides(tiny_mnist), cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (workdir / "outputs" / "runs").iterdir()
    return run_dir


def test_run_writes_metrics_checkpoints_config_and_tensorboard(finished_run):
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert REQUIRED_METRICS <= metrics.keys()
    assert metrics["status"] == "ok" and metrics["epochs"] == 2 and metrics["params"] > 0
    for key in ("train/acc", "val/acc", "test/acc"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["test/acc"] > 0.5  # the synthetic classes are easy: training must have learned
    assert (finished_run / "checkpoints" / "last.ckpt").is_file()
    assert list((finished_run / "checkpoints").glob("best-*.ckpt"))
    assert (finished_run / "config.yaml").is_file() and (finished_run / ".hydra" / "config.yaml").is_file()
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
    result = run_command("mnist_cnn.evaluate", f"run_dir={finished_run}", cwd=finished_run.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    evaluation = json.loads((finished_run / "eval.json").read_text())
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert evaluation["test/acc"] == metrics["test/acc"]
    assert f"test/acc {metrics['test/acc']:.4f}" in result.stdout


def test_checkpoints_hold_plain_hyperparameters_and_load_weights_only(finished_run):
    for checkpoint in (finished_run / "checkpoints").glob("*.ckpt"):
        loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
        assert loaded["hyper_parameters"]["model"]["_target_"] == "mnist_cnn.models.FastCNN"


def test_weights_of_an_older_layout_fail_with_one_line(finished_run, tmp_path):
    """FastCNN once pooled after ReLU: its BatchNorm weights sat one layer earlier."""
    run_dir = shutil.copytree(finished_run, tmp_path / "older")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    best = run_dir / metrics["best_checkpoint"]
    checkpoint = torch.load(best, weights_only=True)
    checkpoint["state_dict"] = {name.replace("layers.2.", "layers.1."): value for name, value in checkpoint["state_dict"].items()}
    torch.save(checkpoint, best)
    result = run_command("mnist_cnn.evaluate", f"run_dir={run_dir}", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {best} does not fit the FastCNN its run's config.yaml describes")


def test_runs_never_share_a_directory(tiny_mnist, tmp_path):
    first = run_command("mnist_cnn.train", *quick_overrides(tiny_mnist, "trainer=debug"), cwd=tmp_path)
    second = run_command("mnist_cnn.train", *quick_overrides(tiny_mnist, "trainer=debug"), cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-2000:]
    assert len(list((tmp_path / "outputs" / "runs").iterdir())) == 2


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lr=0", "optim.lr=0 is invalid: allowed values are a finite number > 0"),
        ("optim.lr=-0.1", "optim.lr=-0.1 is invalid"),
        ("data.batch_size=0", "data.batch_size=0 is invalid: allowed values are an integer >= 1"),
        ("model.dropout=1.0", "model.dropout=1.0 is invalid: allowed values are a number in [0, 1)"),
        ("model.dropout=-0.2", "model.dropout=-0.2 is invalid"),
        ("data.val_size=600", "data.val_size=600 is invalid: allowed values are an integer from 1 to 599"),
        ("model.width=0", "model.width=0 is invalid: allowed values are an integer >= 1"),
        ("model.stem=conv", "model.stem=conv is invalid: allowed values are pool or strided"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 is invalid: allowed values are an integer >= 1"),
        ("optim.lr=fast", "optim.lr='fast' is not a number"),
    ],
)
def test_bad_values_fail_fast_with_one_line_and_no_run_directory(override, message, tiny_mnist, tmp_path):
    result = run_command("mnist_cnn.train", *quick_overrides(tiny_mnist, override), cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_missing_data_without_download_fails_fast(tmp_path):
    result = run_command("mnist_cnn.train", *quick_overrides(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode != 0
    assert "holds no MNIST and data.download=false" in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_unknown_group_option_keeps_hydras_message(tiny_mnist, tmp_path):
    result = run_command("mnist_cnn.train", *quick_overrides(tiny_mnist, "model=resnet9000"), cwd=tmp_path)
    assert result.returncode != 0
    assert "Could not find 'model/resnet9000'" in result.stderr


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
