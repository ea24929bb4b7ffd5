"""Shared epoch prefixes: the grid's plan, and a job that continues a shorter job's run ending as if trained alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from conftest import make_mnist_root, quick_overrides, train_in_process
from mnist_cnn.errors import UserError
from mnist_cnn.sweeps.plan import GridJob, describe_sharing, levels, plan_jobs, why_not_shared
from mnist_cnn.sweeps.resume import quoted
from mnist_cnn.training.checks import prepare
from mnist_cnn.training.config import compose_config
from mnist_cnn.training.continuation import copy_logs, moved


def grid_of(*sweep: str, why_not: str | None = None) -> list[GridJob]:
    """The combinations Hydra's basic sweeper makes of these overrides, each job's max_epochs from its own."""
    (combinations,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(list(sweep)), None)
    epochs = [
        next((int(line.split("=")[1]) for line in job if line.startswith("trainer.max_epochs=")), 1)
        for job in combinations
    ]
    return [GridJob(tuple(job), count, why_not) for job, count in zip(combinations, epochs, strict=True)]


def seed_grid(*extra: str) -> list[GridJob]:
    cfg = compose_config("+sweep=seed_grid", *extra, hydra=True)
    axes = [f"{key}={values}" for key, values in cfg.hydra.sweeper.params.items()]
    return grid_of(*axes, why_not=why_not_shared(compose_config("+sweep=seed_grid", *extra)))


def test_the_seed_grid_is_30_trainings_and_1200_epochs_instead_of_150_and_3750():
    plan = plan_jobs(seed_grid())
    assert len(plan) == 150 and [job.num for job in plan] == list(range(150))
    assert sum(job.after is None for job in plan) == 30
    assert sum(job.epochs for job in plan) == 1200 and sum(job.max_epochs for job in plan) == 3750
    assert [len(level) for level in levels(plan)] == [30] * 5
    jobs = {job.num: job for job in plan}
    for job in plan:
        if job.after is not None:  # the same combination, the next shorter epoch count, one level before
            before = jobs[job.after]
            assert set(before.overrides) ^ set(job.overrides) == {
                f"trainer.max_epochs={before.max_epochs}",
                f"trainer.max_epochs={job.max_epochs}",
            }
            assert before.level == job.level - 1 and job.epochs == job.max_epochs - before.max_epochs
    assert "sharing epoch prefixes: 150 jobs as 30 trainings, 1,200 epochs instead of 3,750" in describe_sharing(
        seed_grid(), plan
    )


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ("scheduler=onecycle", "its one_cycle schedule is sized to each run's length"),
        ("scheduler=cosine", "its cosine schedule is sized to each run's length"),
        (
            "+callbacks.stop={_target_:pytorch_lightning.callbacks.EarlyStopping,monitor:val/acc}",
            "early stopping ends each run on its own",
        ),
        ("callbacks.last_checkpoint=null", "callbacks.last_checkpoint is off, and a continued run needs it"),
    ],
)
def test_a_schedule_sized_to_the_run_or_early_stopping_keeps_every_job_on_its_own(override, reason):
    grid = seed_grid(override)
    plan = plan_jobs(grid)
    assert [job.overrides for job in plan] == [job.overrides for job in grid]  # Hydra's own order
    assert all(job.after is None and job.epochs == job.max_epochs for job in plan)
    assert (
        describe_sharing(grid, plan) == f"epoch prefixes not shared, every job trains all its epochs itself: {reason}"
    )


def test_a_step_schedule_is_shared_and_a_grid_without_an_epochs_axis_is_left_as_it_is():
    assert why_not_shared(compose_config("+sweep=seed_grid", "scheduler=step")) is None
    grid = grid_of("optim.lr=0.1,0.01", "data.batch_size=32,64")
    assert [job.overrides for job in plan_jobs(grid)] == [job.overrides for job in grid]
    assert describe_sharing(grid, plan_jobs(grid)) is None


PATH_CHARACTERS = st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters="$")


@given(st.text(PATH_CHARACTERS, max_size=40))
def test_any_path_survives_hydras_override_grammar_quoted(path):
    assert OverridesParser.create().parse_override(quoted("continue_from", path)).value() == path


def test_the_callbacks_state_moves_with_the_checkpoints():
    state = {"ModelCheckpoint{'monitor': 'val/acc'}": {"dirpath": "/a/ckpt", "best_k_models": {"/a/ckpt/b.ckpt": 1.0}}}
    assert moved(state, "/a/ckpt", "/b/ckpt") == {
        "ModelCheckpoint{'monitor': 'val/acc'}": {"dirpath": "/b/ckpt", "best_k_models": {"/b/ckpt/b.ckpt": 1.0}}
    }
    assert moved({"path": "/a/ckpt2/x", "list": ["/a/ckpt"]}, "/a/ckpt", "/b") == {"path": "/a/ckpt2/x", "list": ["/b"]}


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def hparams(run_dir: Path) -> dict[str, object]:
    """The hyperparameters of the run's TensorBoard HParams session."""
    from google.protobuf.json_format import MessageToDict
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    found = {}
    for path in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    session = HParamsPluginData.FromString(value.metadata.plugin_data.content).session_start_info
                    found.update({key: MessageToDict(item) for key, item in session.hparams.items()})
    return found


def test_copied_logs_leave_the_finished_runs_hparams_behind(trained_run, tmp_path):
    copy_logs(trained_run / "tensorboard", tmp_path / "tensorboard")
    copied, original = scalars(tmp_path), scalars(trained_run)
    assert copied == {tag: points for tag, points in original.items() if not tag.startswith("test/")}  # logged last
    assert hparams(trained_run)["trainer.max_epochs"] == 2 and hparams(tmp_path) == {}


@pytest.fixture
def step_run(trained_run, tmp_path) -> Path:
    """The trained run as if it had a step schedule (onecycle's length could not grow)."""
    run_dir = shutil.copytree(trained_run, tmp_path / "step_run")
    config = OmegaConf.load(run_dir / "config.yaml")
    config.scheduler = compose_config("scheduler=step").scheduler
    OmegaConf.save(config, run_dir / "config.yaml")
    return run_dir


def prepare_continuing(source: Path, tiny_mnist: Path, run_dir: Path, *overrides: str):
    arguments = quick_overrides(tiny_mnist, "scheduler=step", f"continue_from={source}", *overrides)
    return prepare(compose_config(*arguments), run_dir, arguments)


def test_continue_from_takes_only_a_finished_run_of_the_same_experiment_with_fewer_epochs(
    trained_run, step_run, tiny_mnist, tmp_path
):
    with pytest.raises(UserError, match=f"continue_from={tmp_path} is not a run directory"):
        prepare_continuing(tmp_path, tiny_mnist, tmp_path / "new")
    with pytest.raises(UserError, match="its schedule was sized for its 2 epochs"):
        prepare_continuing(trained_run, tiny_mnist, tmp_path / "new", "trainer.max_epochs=3")
    with pytest.raises(UserError, match="trained 2 epochs already: give trainer.max_epochs above that"):
        prepare_continuing(step_run, tiny_mnist, tmp_path / "new", "trainer.max_epochs=2")
    with pytest.raises(UserError, match=r"is another experiment \(its optim.lr is 0.003, this run's 0.5\)"):
        prepare_continuing(step_run, tiny_mnist, tmp_path / "new", "trainer.max_epochs=3", "optim.lr=0.5")
    metrics = json.loads((step_run / "metrics.json").read_text())
    (step_run / "metrics.json").write_text(json.dumps({**metrics, "status": "diverged"}))
    with pytest.raises(UserError, match=r"cannot be continued \(it diverged\)"):
        prepare_continuing(step_run, tiny_mnist, tmp_path / "new", "trainer.max_epochs=3")
    (step_run / "metrics.json").write_text(json.dumps(metrics))
    cfg = prepare_continuing(step_run, tiny_mnist, tmp_path / "new", "trainer.max_epochs=3", "data.eval_batch_size=50")
    assert cfg.continue_from == str(step_run) and cfg.trainer.max_epochs == 3


def results(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.pop("wall_time_s")
    return metrics


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize("best", ["val/acc,max", "val/loss,min"])  # the best epoch stays on a tie / moves on
def test_a_job_continuing_a_shorter_jobs_run_ends_exactly_as_the_same_job_trained_alone(best, tmp_path):
    monitor, mode = best.split(",")
    data = make_mnist_root(tmp_path / "data")
    overrides = quick_overrides(
        data,
        "scheduler=none",
        "trainer.deterministic=true",
        f"callbacks.best_checkpoint.monitor={monitor}",
        f"callbacks.best_checkpoint.mode={mode}",
    )
    shorter = train_in_process(tmp_path / "shorter", *overrides, "trainer.max_epochs=1")
    shared = train_in_process(tmp_path / "shared", *overrides, "trainer.max_epochs=3", f"continue_from={shorter}")
    alone = train_in_process(tmp_path / "alone", *overrides, "trainer.max_epochs=3")

    assert results(shared) == results(alone) and results(shared)["epochs"] == 3
    best_epoch = {"val/acc": 0, "val/loss": 2}[monitor]  # accuracy is 1.0 after one epoch; the loss keeps falling
    assert results(shared)["best_checkpoint"].startswith(f"checkpoints/best-epoch{best_epoch:02d}")
    assert sorted(path.name for path in (shared / "checkpoints").iterdir()) == sorted(
        path.name for path in (alone / "checkpoints").iterdir()
    )
    for name in ("last.ckpt", results(alone)["best_checkpoint"].split("/")[-1]):
        for key, tensor in weights(alone / "checkpoints" / name).items():
            assert torch.equal(weights(shared / "checkpoints" / name)[key], tensor), (name, key)
    assert scalars(shared) == scalars(alone)
    assert hparams(shared) == hparams(alone) and hparams(shared)["trainer.max_epochs"] == 3
    shared_config, alone_config = OmegaConf.load(shared / "config.yaml"), OmegaConf.load(alone / "config.yaml")
    assert shared_config.pop("continue_from") == str(shorter) and alone_config.pop("continue_from") is None
    assert shared_config == alone_config
    assert results(shorter)["epochs"] == 1  # the shorter job's own results are untouched
