"""Run directories written by mnist_cnn 0.1.0 (the flat layout) still evaluate, predict, export and resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import RUN_WRITTEN_BY_0_1_0, make_mnist_root, train_in_process
from digit_images import encoded, zero
from mnist_cnn.evaluate import evaluate_run
from mnist_cnn.export import export_run
from mnist_cnn.predict import predict_files
from mnist_cnn.rundir import RunDir
from mnist_cnn.training.config import compose_config, load_run_config, upgrade_config


@pytest.fixture
def old_run(tmp_path) -> Path:
    """A writable copy of the 0.1.0 run, with synthetic data like the data it was trained on."""
    make_mnist_root(tmp_path / "data", train=300, test=100)
    return shutil.copytree(RUN_WRITTEN_BY_0_1_0, tmp_path / "old_run")


def test_the_fixture_really_has_the_old_layout():
    saved = OmegaConf.load(RUN_WRITTEN_BY_0_1_0 / "config.yaml")
    assert saved.model._target_ == "mnist_cnn.models.FastCNN" and "channels_last" in saved.model
    assert saved.scheduler._target_ == "torch.optim.lr_scheduler.StepLR" and saved.scheduler.interval == "epoch"
    assert (
        set(saved.callbacks) == {"checkpoint", "lr_monitor", "progress"} and "_target_" not in saved.logger.tensorboard
    )


def test_an_old_config_upgrades_to_the_layout_of_todays_defaults():
    upgraded = load_run_config(RunDir(RUN_WRITTEN_BY_0_1_0))
    today = compose_config("model.width=4", "scheduler=step", "callbacks.progress.style=log")
    for section in ("model", "scheduler", "speed", "logger", "callbacks"):
        assert OmegaConf.to_container(upgraded[section]) == OmegaConf.to_container(today[section]), section


def test_one_cycle_and_cosine_schedules_upgrade_to_our_factories():
    for old, new in (("OneCycleLR", "one_cycle"), ("CosineAnnealingLR", "cosine")):
        saved = OmegaConf.load(RUN_WRITTEN_BY_0_1_0 / "config.yaml")
        saved.scheduler = {"_target_": f"torch.optim.lr_scheduler.{old}", "interval": "step"}
        upgraded = upgrade_config(saved)
        assert upgraded.scheduler == {"_target_": f"mnist_cnn.training.schedules.{new}", "_partial_": True}


def test_an_old_run_evaluates_to_its_recorded_test_accuracy(old_run, tmp_path):
    result = evaluate_run(old_run, str(tmp_path / "data"))
    assert result["test/acc"] == json.loads((old_run / "metrics.json").read_text())["test/acc"]


def test_an_old_run_predicts_and_exports(old_run, tmp_path):
    (tmp_path / "zero.png").write_bytes(encoded(zero()))
    answers, errors = predict_files(old_run, [tmp_path / "zero.png"])
    assert errors == [] and len(answers) == 1 and answers[0][1].digits[0].label in list("0123456789")
    assert export_run(old_run, "torchscript").is_file()


def test_an_old_run_resumes_for_another_epoch(old_run, tmp_path):
    train_in_process(old_run, f"resume={old_run}", "trainer.max_epochs=2", f"data.root={tmp_path / 'data'}")
    metrics = json.loads((old_run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["status"] == "ok"
    assert OmegaConf.load(old_run / "config.yaml").scheduler._target_ == "mnist_cnn.training.schedules.step_decay"
