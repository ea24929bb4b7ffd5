"""Resumable sweeps: `-m resume=<sweep dir>` runs only what is left, once, and refuses what is not the same sweep."""

from __future__ import annotations

import shlex
import signal
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import run_command, start_command
from mnist_cnn.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, UserError
from mnist_cnn.rundir import SweepDir
from mnist_cnn.sweeps.progress import progress_line
from mnist_cnn.sweeps.resume import GRID_SWEEPER, sweep_arguments
from test_sweeps import read_summary, sweep_overrides

# Two learning rates x two epoch counts at a constant rate: jobs 0 and 1 train one epoch, 2 and 3 continue them.
GRID = ("scheduler=none", "trainer.deterministic=true", "data.batch_size=16", "optim.lr=0.001,0.002")
EPOCHS = "trainer.max_epochs=1,2"


@pytest.fixture(scope="module", autouse=True)
def one_thread_per_process():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield


def grid_arguments(data_root: Path) -> list[str]:
    return ["-m", *sweep_overrides(data_root, *GRID), EPOCHS]


def only_sweep(workdir: Path) -> Path:
    (sweep_dir,) = (workdir / "outputs" / "sweeps").iterdir()
    return sweep_dir


def comparable(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """A summary's rows less their wall times, which no two sweeps share."""
    return [{key: value for key, value in row.items() if key != "wall_time_s"} for row in rows]


@pytest.fixture(scope="module")
def uninterrupted(tiny_mnist, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("uninterrupted")
    result = run_command("mnist_cnn.train", *grid_arguments(tiny_mnist), cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sharing epoch prefixes: 4 jobs as 2 trainings, 4 epochs instead of 6" in result.stdout + result.stderr
    return only_sweep(workdir)


def stopped_sweep(arguments: list[str], workdir: Path, once: str, within_s: float = 180) -> tuple[Path, str]:
    """A sweep stopped by SIGTERM once a file matching `once` exists; its directory and the resume command."""
    process = start_command("mnist_cnn.train", *arguments, cwd=workdir)
    deadline = time.monotonic() + 240
    while not list((workdir / "outputs" / "sweeps").glob(once)):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=within_s)
    assert process.returncode == EXIT_INTERRUPTED, stderr[-3000:]
    (command,) = [line.split("with: ", 1)[1] for line in stderr.splitlines() if line.startswith("continue the sweep")]
    return only_sweep(workdir), command


def killed_after_the_second_job(data_root: Path, workdir: Path) -> tuple[Path, str]:
    return stopped_sweep(grid_arguments(data_root), workdir, once="*/1_*/metrics.json")


def results_lines(job: Path) -> int:
    """How many times the job's log says it finished training (its final `test/acc ... -> <dir>` line)."""
    return sum(" -> " in line and "test/acc" in line for line in (job / "train.log").read_text().splitlines())


@pytest.mark.slow
def test_a_sweep_killed_after_its_second_job_resumes_only_the_rest_to_the_same_summary(
    uninterrupted, tiny_mnist, tmp_path
):
    sweep_dir, command = killed_after_the_second_job(tiny_mnist, tmp_path)
    first_two = sorted(sweep_dir.glob("[01]_*/metrics.json"))
    before = {path: (path.read_text(), path.stat().st_mtime_ns) for path in first_two}

    words = shlex.split(command)
    assert words[:4] == ["python", "-m", "mnist_cnn.train", "-m"] and words[4] == f"resume={sweep_dir}"
    resumed = run_command(*words[2:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    output = resumed.stdout + resumed.stderr
    assert "2 of 4 jobs finished and kept" in output and "#0 :" not in output and "#1 :" not in output
    assert {path: (path.read_text(), path.stat().st_mtime_ns) for path in first_two} == before
    assert comparable(read_summary(sweep_dir)) == comparable(read_summary(uninterrupted))
    assert [results_lines(job.path) for job in SweepDir(sweep_dir).jobs()] == [1, 1, 1, 1]
    last_log = (sweep_dir / read_summary(sweep_dir)[3]["job"] / "train.log").read_text()
    assert "sweep: 4/4 jobs done (4 ok, 0 diverged, 0 failed), best val/acc" in last_log


@pytest.mark.slow
def test_two_processes_resuming_one_sweep_at_once_run_each_job_once(uninterrupted, tiny_mnist, tmp_path):
    sweep_dir, command = killed_after_the_second_job(tiny_mnist, tmp_path)
    words = shlex.split(command)[2:]
    first, second = (start_command(*words, cwd=tmp_path) for _ in range(2))
    for process in (first, second):
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
    assert [results_lines(job.path) for job in SweepDir(sweep_dir).jobs()] == [1, 1, 1, 1]
    assert comparable(read_summary(sweep_dir)) == comparable(read_summary(uninterrupted))


@pytest.mark.slow
def test_a_signal_to_a_joblib_sweep_reaches_its_parallel_jobs_and_the_sweep_resumes(tiny_mnist, tmp_path):
    # Two epochs and more, so the signal lands while both workers train.
    arguments = [
        *grid_arguments(tiny_mnist),
        "trainer.max_epochs=2,3",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    ]
    sweep_dir, command = stopped_sweep(arguments, tmp_path, once="*/[01]_*/checkpoints/last.ckpt", within_s=60)
    assert "interrupted" in [row["status"] for row in read_summary(sweep_dir)]
    resumed = run_command(*shlex.split(command)[2:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [(row["status"], row["epochs"]) for row in read_summary(sweep_dir)] == [("ok", "2")] * 2 + [("ok", "3")] * 2


@pytest.mark.slow
def test_resuming_a_sweep_whose_grid_has_changed_says_what_differs(tiny_mnist, tmp_path):
    arguments = sweep_overrides(tiny_mnist, "+trainer.fast_dev_run=true", "optim.lr=0.001,0.002")
    assert run_command("mnist_cnn.train", "-m", *arguments, cwd=tmp_path).returncode == 0
    sweep_dir = only_sweep(tmp_path)
    plan = SweepDir(sweep_dir).read_plan()
    plan["jobs"][1]["overrides"][-1] = "optim.lr=0.005"  # as if the grid's preset had said 0.005 when it started
    SweepDir(sweep_dir).write_plan(plan)
    resumed = run_command("mnist_cnn.train", "-m", f"resume={sweep_dir}", cwd=tmp_path)
    assert resumed.returncode == EXIT_USER_ERROR
    assert resumed.stderr.strip().splitlines()[-1] == (
        f"error: resume={sweep_dir} was started by another version of its grid (job 1 was optim.lr=0.005, now "
        "optim.lr=0.002): start a new sweep, or restore the grid it started with"
    )


def saved_sweep(sweep_dir: Path, sweeper: str = GRID_SWEEPER) -> Path:
    """A sweep directory with the multirun.yaml a sweep started with `-m +sweep=quick hydra/launcher=joblib` saves."""
    sweep_dir.mkdir(parents=True)
    record = {
        "hydra": {
            "sweeper": {"_target_": sweeper},
            "overrides": {
                "task": ["+sweep=quick", "data.root=/data"],
                "hydra": ["hydra.mode=MULTIRUN", "hydra/launcher=joblib", "hydra.sweep.dir=elsewhere"],
            },
        }
    }
    OmegaConf.save(OmegaConf.create(record), sweep_dir / "multirun.yaml")
    return sweep_dir


def test_resume_runs_the_sweeps_own_command_in_its_directory(tmp_path):
    sweep_dir = saved_sweep(tmp_path / "sweep")
    assert sweep_arguments(["-m", f"resume={sweep_dir}", "hydra.launcher.n_jobs=4"]) == [
        "-m",
        "+sweep=quick",
        "data.root=/data",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=4",
        f"hydra.sweep.dir='{sweep_dir}'",
        "hydra.sweeper.resume=true",
    ]
    assert sweep_arguments(["resume=x", "model=fast"]) == ["resume=x", "model=fast"]  # a run's resume, untouched


def test_resume_refuses_what_is_not_a_grid_sweep_or_another_sweep_with_one_line(trained_run, tmp_path):
    with pytest.raises(UserError, match=f"resume={tmp_path} is not a sweep directory \\(it has no multirun.yaml\\)"):
        sweep_arguments(["-m", f"resume={tmp_path}"])
    with pytest.raises(UserError, match=f"resume={trained_run} is a run, not a sweep: continue it without -m"):
        sweep_arguments(["-m", f"resume={trained_run}"])
    optuna = saved_sweep(tmp_path / "optuna", "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper")
    with pytest.raises(UserError, match="was run by the sweeper .*OptunaSweeper: only grid sweeps resume"):
        sweep_arguments(["-m", f"resume={optuna}"])
    with pytest.raises(UserError, match="^optim.lr=0.1 cannot be added when resuming a sweep"):
        sweep_arguments(["-m", f"resume={saved_sweep(tmp_path / 'grid')}", "optim.lr=0.1"])


def test_the_progress_line_counts_jobs_names_the_best_and_estimates_the_rest_by_epochs():
    plan = {
        "started": 1000.0,
        "done_before": [0],
        "jobs": [{"num": num, "epochs": epochs} for num, epochs in enumerate((10, 10, 10, 5))],
    }
    finished = {
        0: ("0_lr=0.1", {"status": "ok", "val/acc": 0.97}),
        1: ("1_lr=0.01", {"status": "ok", "val/acc": 0.99}),
        2: ("2_lr=1", {"status": "diverged", "val/acc": 0.1}),
    }
    assert progress_line(plan, finished, now=1000.0 + 200) == (
        "sweep: 3/4 jobs done (2 ok, 1 diverged, 0 failed), best val/acc 0.9900 (1_lr=0.01); "
        "0:03:20 elapsed, about 0:00:50 left"  # 20 epochs in 200 s this session, 5 to go
    )
