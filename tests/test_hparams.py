"""TensorBoard's HParams tab: real hyperparameters only, the differing ones first and ticked, real final metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import quick_overrides
from mnist_cnn.training.checks import prepare
from mnist_cnn.training.config import compose_config
from mnist_cnn.training.hparams import FINAL_METRICS, flat_hparams
from mnist_cnn.training.recipe import run

CHOICES = {"model": "fast", "optim": "adam", "scheduler": "onecycle", "data": "mnist", "trainer": "default"}


def experiment_of(run_dir: Path):
    """The experiment summary the run wrote, as TensorBoard's backend reads and orders it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import backend_context, metadata

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.EXPERIMENT_TAG]
    experiment = metadata.parse_experiment_plugin_data(content)
    backend_context._sort_and_reduce_to_hparams_limit(experiment)  # what the dashboard receives
    return experiment


def test_only_real_hyperparameters_are_logged(tiny_mnist):
    params = flat_hparams(compose_config(*quick_overrides(tiny_mnist)), CHOICES)
    assert not [key for key in params if "_target_" in key or "_partial_" in key or key.startswith("speed")]
    assert not {"data.root", "data.download", "data.eval_batch_size"} & set(params)
    assert not [key for key in params if key.startswith("data.augment_strength")]  # nothing is augmented
    assert {
        "model",
        "optim",
        "optim.lr",
        "data.batch_size",
        "scheduler.pct_start",
        "trainer.max_epochs",
        "seed",
    } <= set(params)
    augmented = flat_hparams(compose_config(*quick_overrides(tiny_mnist, "data.augment=affine")), CHOICES)
    assert augmented["data.augment_strength.rotate"] == 10


@pytest.fixture(scope="module")
def swept_run(tiny_mnist, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("hparams") / "run"
    overrides = quick_overrides(tiny_mnist, "trainer.max_epochs=1", "optim=sgd", "optim.lr=0.05")
    run(
        prepare(compose_config(*overrides), run_dir),
        run_dir,
        {**CHOICES, "optim": "sgd"},
        ["optim", "optim.lr", "data.root"],
    )
    return run_dir


def test_the_differing_keys_are_the_columns_tensorboard_shows_first(swept_run):
    experiment = experiment_of(swept_run)
    infos = list(experiment.hparam_infos)
    assert [info.name for info in infos[:2]] == ["optim", "optim.lr"] and all(info.differs for info in infos[:2])
    assert not any(info.differs for info in infos[2:])  # data.root is no hyperparameter, so not listed at all
    assert "data.root" not in {info.name for info in infos}
    assert [info.name.tag for info in experiment.metric_infos] == list(FINAL_METRICS)


def test_each_run_is_a_session_with_its_values(swept_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    events = EventAccumulator(str(swept_run / "tensorboard"))
    events.Reload()
    contents = events.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(contents[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["optim"].string_value == "sgd" and start.hparams["optim.lr"].number_value == 0.05
    assert metadata.SESSION_END_INFO_TAG in contents


@pytest.mark.slow
def test_mlflow_gets_the_same_hyperparameters_and_final_metrics_read_back_with_its_own_client(tiny_mnist, tmp_path):
    import json

    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path}/mlflow.db"
    run_dir = tmp_path / "run"
    overrides = quick_overrides(
        tiny_mnist, "trainer.max_epochs=1", "logger=many", f"logger.mlflow.tracking_uri={store}"
    )
    run(prepare(compose_config(*overrides), run_dir), run_dir, CHOICES, ["optim.lr"])
    client = MlflowClient(store)
    (found,) = client.search_runs([client.get_experiment_by_name("mnist_cnn").experiment_id])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert found.info.run_name == "run" and found.info.status == "FINISHED"
    assert found.data.params["optim.lr"] == "0.003" and found.data.params["model"] == "fast"
    assert found.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    assert {"train/loss", "val/acc", "val/acc_best", "train/lr"} <= set(found.data.metrics)
    assert (run_dir / "tensorboard").is_dir() and (run_dir / "csv" / "metrics.csv").is_file()
