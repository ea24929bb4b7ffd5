"""Sweeps as a user runs them (-m in a subprocess): summaries, the selected model, failures, launchers."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import time
from math import prod
from pathlib import Path

import pytest
import yaml
from data_files import make_data_root
from omegaconf import OmegaConf

from conftest import make_mnist_root, quick_overrides, run_command, start_command
from mnist_cnn.errors import EXIT_INTERRUPTED, UserError
from mnist_cnn.evaluate import evaluate_run
from mnist_cnn.report import report
from mnist_cnn.sweeps.summary import best_row
from mnist_cnn.training.config import compose_config
from mnist_cnn.training.datasets import CATALOGUE


def sweep_overrides(data_root: Path, *extra: str) -> list[str]:
    """One-epoch jobs on the tiny data, logging lines instead of progress bars; `extra` wins over these."""
    overrides = [*quick_overrides(data_root), "trainer.max_epochs=1", "callbacks.progress.style=log", *extra]
    return list({override.split("=")[0]: override for override in overrides}.values())


def run_sweep(workdir: Path, *args: str) -> Path:
    result = run_command("mnist_cnn.train", "-m", *args, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (workdir / "outputs" / "sweeps").iterdir()
    return sweep_dir


def read_summary(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as file:
        return list(csv.DictReader(file))


def job_metrics(sweep_dir: Path, row: dict[str, str]) -> dict:
    return json.loads((sweep_dir / row["job"] / "metrics.json").read_text())


@pytest.fixture(scope="module")
def grid_run(tiny_mnist, tmp_path_factory) -> tuple[Path, str]:
    """A 2x2 grid over the optimizer and the batch size, and what the command printed."""
    workdir = tmp_path_factory.mktemp("grid")
    result = run_command(
        "mnist_cnn.train", "-m", *sweep_overrides(tiny_mnist, "optim=sgd,adam", "data.batch_size=32,64"), cwd=workdir
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (workdir / "outputs" / "sweeps").iterdir()
    return sweep_dir, result.stdout


@pytest.fixture(scope="module")
def grid_sweep(grid_run) -> Path:
    return grid_run[0]


def test_the_best_job_on_a_tie_is_the_one_that_trained_fewer_epochs_whatever_the_job_order():
    def row(job: str, val_acc: float | None, epochs: int, status: str = "ok") -> dict:
        return {"job": job, "val/acc": val_acc, "epochs": epochs, "status": status}

    rows = [row("0_lr=0.05", 0.99, 40), row("1_lr=0.1", 0.99, 25), row("2_lr=0.2", 0.995, 40, "diverged")]
    assert best_row(rows)["job"] == "1_lr=0.1"
    assert best_row(rows[::-1])["job"] == "1_lr=0.1"  # a sharing sweep numbers its jobs in another order
    assert best_row([row("3_lr=0.3", 0.98, 10), *rows])["job"] == "1_lr=0.1"  # accuracy still comes first
    assert best_row([row("4_lr=0.4", None, 10, "interrupted")]) is None


@pytest.mark.slow
def test_grid_summary_has_a_row_per_job_and_marks_the_best_by_validation_accuracy(grid_sweep):
    rows = read_summary(grid_sweep)
    assert len(rows) == 4 and {row["status"] for row in rows} == {"ok"}
    assert list(rows[0])[:3] == ["job", "data.batch_size", "optim"]  # the varying keys, once each
    assert {(row["optim"], row["data.batch_size"]) for row in rows} == {
        (o, b) for o in ("sgd", "adam") for b in ("32", "64")
    }
    for row in rows:
        assert row["job"] == f"{row['job'].split('_')[0]}_data.batch_size={row['data.batch_size']},optim={row['optim']}"
        assert float(row["val/acc"]) == job_metrics(grid_sweep, row)["val/acc"]
    (best,) = [row for row in rows if row["best"] == "yes"]
    assert float(best["val/acc"]) == max(float(row["val/acc"]) for row in rows)
    markdown = (grid_sweep / "summary.md").read_text()
    assert f"Best by val/acc: `{best['job']}`" in markdown and markdown.count("| ok |") == 4
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert table[2].startswith(f"| {best['job'].split('_')[0]} |")  # the winner's row first, under the header
    assert "trainer.max_epochs=1" in markdown.split("|")[0]  # what every job shares, said once above the table


@pytest.mark.slow
def test_the_sweep_records_what_its_jobs_share_and_prints_the_table_and_the_winner(grid_run):
    sweep_dir, stdout = grid_run
    record = yaml.safe_load((sweep_dir / "sweep.yaml").read_text())
    assert record["varying"] == ["data.batch_size", "optim"]
    assert "trainer.max_epochs=1" in record["shared"] and not any(line.startswith("optim") for line in record["shared"])
    assert "| job | data.batch_size | optim | status |" in stdout
    assert f"the selected model: {sweep_dir / 'selected_model'}" in stdout


@pytest.mark.slow
def test_a_sweep_jobs_hparams_mark_the_swept_keys(grid_sweep):
    from test_hparams import experiment_of

    job = next(path for path in grid_sweep.iterdir() if path.name.startswith("0_"))
    shown = [info.name for info in experiment_of(job).hparam_infos[:5]]
    assert shown[:2] == ["data.batch_size", "optim"]


@pytest.mark.slow
def test_selected_model_is_the_best_job_and_evaluate_loads_it(grid_sweep):
    (best,) = [row for row in read_summary(grid_sweep) if row["best"] == "yes"]
    selected = grid_sweep / "selected_model"
    assert json.loads((selected / "metrics.json").read_text())["selected_from"] == best["job"]
    assert evaluate_run(selected)["test/acc"] == job_metrics(grid_sweep, best)["test/acc"]


@pytest.mark.slow
def test_report_rebuilds_the_summary_and_draws_plots(grid_sweep):
    (grid_sweep / "summary.csv").unlink()
    report(grid_sweep)
    assert len(read_summary(grid_sweep)) == 4
    for plot in ("test_acc_by_lr.png", "best_curves.png"):
        assert (grid_sweep / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_refuses_a_folder_without_jobs(tmp_path):
    with pytest.raises(UserError, match="holds no sweep jobs"):
        report(tmp_path)


@pytest.mark.slow
def test_diverged_and_failed_jobs_are_recorded_and_the_sweep_finishes(tiny_mnist, tmp_path):
    # 1e6 makes SGD's loss non-finite at once; 0 makes the job raise (a config error inside the job).
    sweep_dir = run_sweep(
        tmp_path, *sweep_overrides(tiny_mnist, "trainer.max_epochs=2", "optim=sgd", "optim.lr=0.01,1e6,0")
    )
    rows = {row["optim.lr"]: row for row in read_summary(sweep_dir)}
    assert [rows[lr]["status"] for lr in ("0.01", "1000000.0", "0")] == ["ok", "diverged", "failed"]
    assert job_metrics(sweep_dir, rows["1000000.0"])["epochs"] < 2  # stopped early
    assert rows["0"]["error"] == "UserError: optim.lr=0 is invalid: should be greater than 0"
    assert job_metrics(sweep_dir, rows["0"]) == {"status": "failed", "error": rows["0"]["error"]}
    assert rows["0.01"]["best"] == "yes"
    assert (
        json.loads((sweep_dir / "selected_model" / "metrics.json").read_text())["selected_from"] == rows["0.01"]["job"]
    )


@pytest.mark.parametrize(
    "launcher, omp, expected",
    [
        ({}, None, 8),
        ({"cpus_per_task": 3}, None, 3),
        ({}, "2", 2),
        ({"cpus_per_task": 3}, "16", 3),
        ({}, "0", 8),  # not a thread count: ignored
        ({}, "many", 8),
    ],
)
def test_a_job_takes_its_share_of_the_cores_and_no_more_than_omp_num_threads(launcher, omp, expected, monkeypatch):
    from mnist_cnn.sweeps.job import threads_per_job

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    assert threads_per_job(OmegaConf.create(launcher)) == expected


@pytest.mark.slow
def test_joblib_runs_jobs_in_parallel_processes_sharing_the_cores(tiny_mnist, tmp_path):
    sweep_dir = run_sweep(
        tmp_path,
        *sweep_overrides(tiny_mnist, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "optim.lr=0.003,0.01"),
    )
    rows = read_summary(sweep_dir)
    assert [row["status"] for row in rows] == ["ok", "ok"]
    expected_threads = max(1, (os.cpu_count() or 1) // 2)
    for row in rows:
        assert f"torch threads for this job: {expected_threads}" in (sweep_dir / row["job"] / "train.log").read_text()


@pytest.mark.slow
def test_submitit_local_runs_each_job_in_its_own_process_with_its_cpus(tiny_mnist, tmp_path):
    launcher = ["hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=10"]
    sweep_dir = run_sweep(tmp_path, *sweep_overrides(tiny_mnist, *launcher, "optim.lr=0.003,0.01"))
    rows = read_summary(sweep_dir)
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert len(list((sweep_dir / ".submitit").glob("*/*_result.pkl"))) == 2  # submitit ran and returned both jobs
    for row in rows:
        assert "torch threads for this job: 1" in (sweep_dir / row["job"] / "train.log").read_text()
    assert (
        evaluate_run(sweep_dir / "selected_model")["test/acc"]
        == job_metrics(sweep_dir, next(r for r in rows if r["best"] == "yes"))["test/acc"]
    )


@pytest.mark.slow
def test_optuna_search_returns_validation_accuracy_as_its_objective(tiny_mnist, tmp_path):
    sweep_dir = run_sweep(tmp_path, *sweep_overrides(tiny_mnist, "hparams_search=optuna", "hydra.sweeper.n_trials=2"))
    rows = read_summary(sweep_dir)
    assert len(rows) == 2 and {row["status"] for row in rows} == {"ok"}
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == max(job_metrics(sweep_dir, row)["val/acc"] for row in rows)
    assert set(results["best_params"]) == {"optim.lr", "model.dropout"}  # data.batch_size is pinned on the command line


@pytest.mark.slow
def test_subprocess_ddp_inside_a_sweep_fails_fast_with_the_way_out(tiny_mnist, tmp_path):
    args = sweep_overrides(tiny_mnist, "trainer.strategy=ddp", "trainer.devices=2", "optim.lr=0.003,0.01")
    result = run_command("mnist_cnn.train", "-m", *args, cwd=tmp_path)
    assert result.returncode != 0
    assert "trainer.strategy=ddp with trainer.devices=2 cannot run inside a -m sweep" in result.stderr
    assert "ddp_spawn" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists()


def compose_hydra(*overrides: str):
    return compose_config(*overrides, hydra=True)


def test_seed_grid_is_the_seed_studys_grid_with_the_optimizer_as_an_axis():
    params = compose_hydra("+sweep=seed_grid").hydra.sweeper.params
    assert set(params) == {"optim", "optim.lr", "trainer.max_epochs", "data.batch_size"}
    assert params["trainer.max_epochs"] == "10,20,25,30,40" and params["data.batch_size"] == "32,64,512"
    assert prod(len(str(values).split(",")) for values in params.values()) == 150


def test_quick_sweep_is_four_one_epoch_jobs_of_the_fast_model():
    cfg = compose_hydra("+sweep=quick")
    assert cfg.trainer.max_epochs == 1 and cfg.model._target_.endswith("FastCNN")
    assert prod(len(str(values).split(",")) for values in cfg.hydra.sweeper.params.values()) == 4


def test_datasets_preset_sweeps_the_data_group_over_every_data_set():
    cfg = compose_hydra("+sweep=datasets")
    assert cfg.hydra.sweeper.params.data.split(",") == list(CATALOGUE)
    assert cfg.model._target_.endswith("FastCNN")


@pytest.mark.slow
def test_datasets_sweep_trains_one_model_per_data_set_and_names_it_in_the_summary(tmp_path):
    root = make_data_root(make_mnist_root(tmp_path / "data"), "usps")
    sweep_dir = run_sweep(tmp_path, "+sweep=datasets", *sweep_overrides(root, "data=mnist,usps"))
    rows = read_summary(sweep_dir)
    assert [(row["data"], row["status"]) for row in rows] == [("mnist", "ok"), ("usps", "ok")]
    assert "| data |" in (sweep_dir / "summary.md").read_text()
    assert json.loads((sweep_dir / rows[1]["job"] / "classes.json").read_text()) == {"classes": list("0123456789")}


def test_slurm_preset_runs_one_task_per_device():
    launcher = compose_hydra("hydra/launcher=slurm", "trainer.devices=4").hydra.launcher
    assert launcher.tasks_per_node == 4 and launcher.gpus_per_node == 4
    assert launcher._target_.endswith("SlurmLauncher")


@pytest.mark.slow
def test_sigterm_stops_the_whole_sweep_keeps_what_finished_and_prints_the_command_that_resumes_it(tmp_path):
    data_root = make_mnist_root(tmp_path / "data", train=1200)
    overrides = sweep_overrides(data_root, "trainer.max_epochs=3", "data.batch_size=16", "optim.lr=0.001,0.002,0.003")
    process = start_command("mnist_cnn.train", "-m", *overrides, cwd=tmp_path)
    deadline = time.monotonic() + 180
    while not list((tmp_path / "outputs" / "sweeps").glob("*/1_*/checkpoints/last.ckpt")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    _, stderr = process.communicate(timeout=120)
    assert time.monotonic() - stopped_at < 30 and process.returncode == EXIT_INTERRUPTED, stderr[-3000:]
    (sweep_dir,) = (tmp_path / "outputs" / "sweeps").iterdir()
    statuses = [row["status"] for row in read_summary(sweep_dir)]
    assert statuses[0] == "ok" and statuses[1] == "interrupted" and statuses[2:] in ([], ["not run"])
    (command,) = [line.split("with: ", 1)[1] for line in stderr.splitlines() if line.startswith("continue the sweep")]
    words = shlex.split(command)
    assert words[:4] == ["python", "-m", "mnist_cnn.train", "-m"]
    resumed = run_command(*words[2:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = read_summary(sweep_dir)
    assert [row["status"] for row in rows] == ["ok"] * 3
    assert json.loads((sweep_dir / rows[1]["job"] / "metrics.json").read_text())["epochs"] == 3
