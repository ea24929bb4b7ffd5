"""Every option of every config group composes, and what it describes can be built."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import PropertyMock, patch

import pytest
import torch
from data_files import make_data_root

from mnist_cnn.rundir import RunDir
from mnist_cnn.training.config import CONFIG_DIR
from mnist_cnn.training.config import compose_config as compose_with
from mnist_cnn.training.data import ImageDataModule
from mnist_cnn.training.module import DigitClassifier
from mnist_cnn.training.recipe import build_callbacks, build_loggers, build_trainer

GROUPS = sorted(path.name for path in CONFIG_DIR.iterdir() if path.is_dir() and path.name != "__pycache__")


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def test_every_group_has_options_and_a_default():
    cfg = compose_with()
    for group in ("data", "model", "optim", "scheduler", "trainer", "logger", "callbacks"):
        assert group in GROUPS and options(group), group
        assert group in cfg


@pytest.mark.parametrize("option", options("model"))
def test_model_options_build_a_working_network(option):
    cfg = compose_with(f"model={option}")
    module = DigitClassifier.from_config(cfg)
    assert module(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize("optim", options("optim"))
@pytest.mark.parametrize("scheduler", options("scheduler"))
def test_optimizer_and_scheduler_options_build(optim, scheduler, tmp_path):
    cfg = compose_with(f"optim={optim}", f"scheduler={scheduler}", "trainer=cpu", "trainer.max_epochs=3")
    module = DigitClassifier.from_config(cfg)
    trainer = build_trainer(cfg, RunDir(tmp_path))
    module.trainer = trainer
    # The schedule's length is normally known once data is attached.
    with patch.object(type(trainer), "estimated_stepping_batches", new_callable=PropertyMock, return_value=30):
        configured = module.configure_optimizers()
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    assert type(optimizer).__name__.lower() == optim
    assert optimizer.param_groups[0]["lr"] > 0
    if scheduler == "none":
        assert not isinstance(configured, dict)
    else:
        assert type(configured["lr_scheduler"]["scheduler"]).__module__ == "torch.optim.lr_scheduler"
        assert configured["lr_scheduler"]["interval"] == ("epoch" if scheduler == "step" else "step")


def test_one_cycle_runs_when_its_warm_up_is_a_single_step(tmp_path):
    cfg = compose_with("scheduler=onecycle", "scheduler.pct_start=0.25", "trainer=cpu")
    module = DigitClassifier.from_config(cfg)
    module.trainer = build_trainer(cfg, RunDir(tmp_path))
    with patch.object(type(module.trainer), "estimated_stepping_batches", new_callable=PropertyMock, return_value=4):
        configured = module.configure_optimizers()
    for _ in range(4):  # torch's OneCycleLR alone raises ZeroDivisionError here
        configured["optimizer"].step()
        configured["lr_scheduler"]["scheduler"].step()
    assert configured["lr_scheduler"]["scheduler"].total_steps == 5


@pytest.mark.parametrize("option", options("trainer"))
def test_trainer_options_build_a_trainer(option, tmp_path):
    cfg = compose_with(f"trainer={option}")
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        assert cfg.trainer.devices != 0  # a GPU preset: composes; building needs a GPU
        return
    trainer = build_trainer(cfg, RunDir(tmp_path))
    assert trainer.max_epochs == cfg.trainer.max_epochs or cfg.trainer.get("fast_dev_run")


LOGGERS_OF = {"none": [], "many": ["tensorboard", "csv", "mlflow"]}


@pytest.mark.parametrize("option", options("logger"))
def test_logger_options_build(option, tmp_path):
    if option == "wandb":
        pytest.importorskip("wandb", reason="logger=wandb needs `pip install wandb`")
    names = LOGGERS_OF.get(option, [option])
    store = [f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/mlflow.db"] if "mlflow" in names else []
    loggers = build_loggers(compose_with(f"logger={option}", *store).logger, RunDir(tmp_path))
    assert [type(logger).__name__.lower() for logger in loggers] == [f"{name}logger" for name in names]
    folders = [RunDir(tmp_path).logger_dir(name) for name in names if name in ("tensorboard", "csv")]
    assert [Path(logger.log_dir) for logger in loggers if logger.log_dir] == folders


@pytest.mark.parametrize("option", options("callbacks"))
def test_callback_options_build(option, tmp_path):
    callbacks = build_callbacks(compose_with(f"callbacks={option}").callbacks, RunDir(tmp_path))
    names = {type(callback).__name__ for callback in callbacks}
    assert {"ModelCheckpoint", "LearningRateMonitor", "RandomState", "CheckpointOnInterrupt"} <= names
    checkpoints = [callback for callback in callbacks if type(callback).__name__ == "ModelCheckpoint"]
    assert {callback.filename for callback in checkpoints} == {RunDir.BEST_CHECKPOINT_NAME, RunDir.LAST_CHECKPOINT_NAME}
    assert {callback.dirpath for callback in checkpoints} == {str(RunDir(tmp_path).checkpoints)}


def test_a_callback_or_logger_set_to_null_is_left_out(tmp_path):
    cfg = compose_with("callbacks.lr_monitor=null", "logger.tensorboard=null")
    assert "LearningRateMonitor" not in {
        type(callback).__name__ for callback in build_callbacks(cfg.callbacks, RunDir(tmp_path))
    }
    assert build_loggers(cfg.logger, RunDir(tmp_path)) == []


@pytest.mark.parametrize("option", options("data"))
def test_data_options_build(option, tmp_path):
    cfg = compose_with(f"data={option}", f"data.root={make_data_root(tmp_path, option)}", "data.val_size=100")
    datamodule = ImageDataModule(**cfg.data, seed=cfg.seed)
    datamodule.setup()
    assert [len(datamodule.splits[split][1]) for split in ("train", "val", "test")] == [500, 100, 200]
