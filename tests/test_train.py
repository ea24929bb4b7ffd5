"""Training end to end: a tiny run in-process, evaluate, reload, and bad input refused before anything is written."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

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


def test_tensorboard_has_one_curve_per_figure_the_final_metrics_and_images(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(finished_run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    expected = {"train/loss", "train/acc", "train/lr", "val/loss", "val/acc", "val/acc_best", "test/acc", "test/loss"}
    assert set(events.Tags()["scalars"]) == expected  # no epoch chart, no _step/_epoch pairs, no hparams/* copies
    metrics = json.loads((finished_run / "metrics.json").read_text())
    last_step = max(event.step for tag in expected - {"test/acc", "test/loss"} for event in events.Scalars(tag))
    ((step, value),) = [(event.step, event.value) for event in events.Scalars("test/acc")]
    assert step >= last_step and value == pytest.approx(metrics["test/acc"])  # one point, at the end
    assert events.Scalars("val/acc_best")[-1].value == max(event.value for event in events.Scalars("val/acc"))
    images = set(events.Tags()["images"])
    assert {"val/confusion", "val/misclassified", "test/confusion", "test/misclassified", "curves"} <= images
    assert len(events.Images("val/confusion")) == 2  # one per epoch


def test_figures_every_n_epochs_are_drawn_at_those_epochs_and_the_last(tiny_mnist, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    overrides = [*quick_overrides(tiny_mnist), "trainer.max_epochs=3", "callbacks.figures.every_n_epochs=2"]
    run_dir = train_in_process(tmp_path / "run", *overrides)
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    validated = [event.step for event in events.Scalars("val/acc")]  # epochs 1, 2, 3
    drawn = [event.step for event in events.Images("val/confusion")]
    assert len(drawn) == 2 and all(
        0 <= step - epoch_end <= 1 for step, epoch_end in zip(drawn, validated[1:], strict=True)
    )


def test_a_run_keeps_its_figures_and_per_class_accuracy(finished_run):
    for name in ("curves", "test_confusion", "test_misclassified"):
        assert (finished_run / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    per_class = json.loads((finished_run / "metrics.json").read_text())["test/acc_per_class"]
    assert list(per_class) == [str(digit) for digit in range(10)]
    assert all(value is None or 0 <= value <= 1 for value in per_class.values())


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
    ("optim.lr=0", "optim.lr=0 is invalid: should be greater than 0"),
    ("optim.lr=-0.1", "optim.lr=-0.1 is invalid: should be greater than 0"),
    ("data.batch_size=0", "data.batch_size=0 is invalid: should be greater than or equal to 1"),
    ("model.dropout=1.0", "model.dropout=1.0 is invalid: should be less than 1"),
    ("model.dropout=-0.2", "model.dropout=-0.2 is invalid: should be greater than or equal to 0"),
    ("data.val_size=600", "data.val_size=600 is invalid: allowed values are an integer from 1 to 599"),
    ("model.width=0", "model.width=0 is invalid: should be greater than or equal to 1"),
    ("model.stem=conv", "model.stem='conv' is invalid: should be 'pool' or 'strided'"),
    ("data.augment=blur", "data.augment='blur' is invalid: should be 'none', 'shift', 'affine' or 'wild'"),
    ("callbacks.progress.style=fancy", "callbacks.progress.style='fancy' is invalid: should be 'auto', 'bar' or 'log'"),
    ("trainer.max_epochs=0", "trainer.max_epochs=0 is invalid: should be greater than or equal to 1"),
    ("data.eval_batch_size=-1", "data.eval_batch_size=-1 is invalid: should be greater than or equal to 1"),
    ("data.augment_strength.rotate=nan", "data.augment_strength.rotate=nan is invalid: should be a finite number"),
    ("data.outliers=1.5", "data.outliers=1.5 is invalid: should be less than or equal to 1"),
    ("trainer.devices=abc", "trainer.devices='abc' is invalid: should be a valid integer; or should be 'auto'"),
    ("+trainer.foo=1", "trainer: foo is not an argument of Lightning's Trainer"),
    ("optim=sgd optim.nesterov=true optim.momentum=0", "optim: nesterov=true needs momentum > 0"),
    ("seed=-1", "seed=-1 is invalid: should be greater than or equal to 0"),
    (
        "callbacks.figures.every_n_epochs=0",
        "callbacks.figures.every_n_epochs=0 is invalid: should be greater than or equal to 1",
    ),
    ("scheduler.max_lr=${nowhere}", "scheduler.max_lr cannot be resolved (Interpolation key 'nowhere' not found)"),
    ("optim.lr=fast", "optim.lr='fast' is invalid: should be a valid number"),
]


@pytest.mark.parametrize("override, message", BAD_VALUES)
def test_bad_values_are_refused_with_one_line_before_the_run_directory_exists(override, message, tiny_mnist, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(UserError) as refused:
        prepare(compose_config(*quick_overrides(tiny_mnist, *override.split())), run_dir)
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
        f"data.root={tmp_path / 'nowhere'}: {images} is missing and data.download=false: set data.download=true, "
        "or point data.root at a folder holding torchvision's MNIST files"
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


def log_messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_a_run_says_what_it_trains_how_it_goes_and_what_it_measures(tiny_mnist, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    overrides = quick_overrides(tiny_mnist, "callbacks.progress.style=log", "callbacks.progress.every_seconds=0")
    train_in_process(tmp_path / "run", *overrides)
    messages = log_messages(caplog)
    assert any(
        re.fullmatch(r"network: FastCNN, 29,178 parameters, \d+\.\d MFLOPs per image", line) for line in messages
    )
    assert any(re.fullmatch(r"epoch 1/2  step 16/16  \d+ images/s  loss \d\.\d{4}", line) for line in messages)
    assert any(
        re.fullmatch(r"epoch 2/2  val/loss \d\.\d{4}  val/acc \d\.\d{4}  \(\d+\.\d s\)", line) for line in messages
    )
    assert "measuring train/val/test with the best checkpoint (800 images)..." in messages
    assert not any("litlogger" in line for line in messages)


def test_a_smoke_test_measures_one_batch_of_each_split(tiny_mnist, tmp_path):
    run_dir = train_in_process(
        tmp_path / "run", *quick_overrides(tiny_mnist, "trainer=debug", "data.eval_batch_size=30")
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["measured_images"] == {"train": 30, "val": 30, "test": 30}
    assert metrics["best_checkpoint"] is None and metrics["status"] == "ok"


def test_limit_batches_limit_the_final_measurement_as_they_limit_lightnings_loops(tiny_mnist, tmp_path):
    overrides = ["+trainer.limit_val_batches=2", "+trainer.limit_test_batches=0.5", "data.eval_batch_size=10"]
    run_dir = train_in_process(tmp_path / "run", *quick_overrides(tiny_mnist, *overrides))
    assert json.loads((run_dir / "metrics.json").read_text())["measured_images"] == {
        "train": 500,
        "val": 20,
        "test": 100,
    }


@pytest.mark.parametrize("logger", ["logger=none", "logger=[]"])
def test_logging_can_be_switched_off(logger, tiny_mnist, tmp_path):
    run_dir = train_in_process(tmp_path / "run", *quick_overrides(tiny_mnist, logger))
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"
    expected = [".lock", "checkpoints", "classes.json", "config.yaml", "metrics.json", "plots"]
    assert sorted(path.name for path in run_dir.iterdir()) == expected
    assert evaluate_run(run_dir)["test/acc"] > 0.5  # a run without loggers reads back like any other


def test_evaluate_takes_the_checkpoint_and_split_and_says_which(finished_run):
    result = evaluate_run(finished_run, ckpt="last", split="val")
    assert result["split"] == "val" and result["checkpoint"] == str(finished_run / "checkpoints" / "last.ckpt")
    assert {"val/acc", "val/loss", "val/acc_per_class", "split", "checkpoint", "data"} <= set(result)
    assert 0 <= result["val/acc"] <= 1 and result["data"] == "mnist"
    assert json.loads((finished_run / "eval.json").read_text()) == result
    with pytest.raises(UserError, match="split=holdout is not known: use one of train, val, test"):
        evaluate_run(finished_run, split="holdout")
    with pytest.raises(UserError, match="ckpt=nowhere.ckpt: nowhere.ckpt does not exist: use best, last or"):
        evaluate_run(finished_run, ckpt="nowhere.ckpt")


def first_weight(run_dir: Path, checkpoint: str) -> torch.Tensor:
    return torch.load(run_dir / checkpoint, weights_only=True)["state_dict"]["network.layers.0.weight"]


def test_init_from_starts_a_new_run_from_another_runs_weights(finished_run, tiny_mnist, tmp_path):
    """With a learning rate of almost nothing the new run's weights stay where they started."""
    frozen = ("scheduler=none", "optim=sgd", "optim.lr=1e-20", "trainer.max_epochs=1")
    run_dir = train_in_process(tmp_path / "tuned", *quick_overrides(tiny_mnist, f"init_from={finished_run}", *frozen))
    source = json.loads((finished_run / "metrics.json").read_text())["best_checkpoint"]
    assert torch.equal(first_weight(run_dir, "checkpoints/last.ckpt"), first_weight(finished_run, source))
    assert OmegaConf.load(run_dir / "config.yaml").init_from == str(finished_run)


def test_init_from_refuses_another_architecture_or_a_missing_source(finished_run, tiny_mnist, tmp_path):
    with pytest.raises(UserError, match="does not fit the CNN1 .*: init_from needs weights of the same model"):
        train_in_process(tmp_path / "cnn1", *quick_overrides(tiny_mnist, f"init_from={finished_run}", "model=cnn1"))
    with pytest.raises(UserError, match="init_from=.*nowhere is neither a run directory nor a checkpoint file"):
        prepare(compose_config(*quick_overrides(tiny_mnist, f"init_from={tmp_path / 'nowhere'}")), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_failed_download_is_one_line_with_the_fix_and_leaves_no_run_directory(tmp_path, monkeypatch):
    from mnist_cnn.training import data

    def offline(*args, **kwargs):
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\nTried https://x/, got:\n<urlopen error offline>"
        )

    monkeypatch.setattr(data.torchvision.datasets.MNIST, "__init__", offline)
    with pytest.raises(UserError) as refused:
        prepare(compose_config(f"data.root={tmp_path / 'data'}"), tmp_path / "run")
    message = str(refused.value)
    assert message.startswith(
        f"could not download mnist into {tmp_path / 'data' / 'MNIST' / 'raw'} (<urlopen error offline>)"
    )
    assert "train-images-idx3-ubyte" in message and "data.download=false" in message and "\n" not in message
    assert not (tmp_path / "run").exists()
