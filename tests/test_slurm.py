"""A real Slurm: a single-node cluster on this machine runs a sweep through `hydra/launcher=slurm`, to its summary."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from conftest import run_command
from mnist_cnn.rundir import SweepDir
from slurm_cluster import ClusterUnavailable, local_slurm
from test_sweeps import read_summary, sweep_overrides

# CPU only: one task with one core and 1 GB per job, no GPUs.
SLURM = (
    "hydra/launcher=slurm",
    "trainer.devices=1",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",
)


@pytest.fixture
def slurm_env(tmp_path_factory):
    try:
        with local_slurm(tmp_path_factory.mktemp("slurm")) as env:
            yield env
    except ClusterUnavailable as why:
        pytest.skip(f"no local Slurm cluster: {why}")


@pytest.mark.slow
def test_a_two_job_sweep_runs_on_slurm_to_a_complete_summary(slurm_env, tiny_mnist, tmp_path, monkeypatch):
    for name, value in slurm_env.items():
        monkeypatch.setenv(name, value)
    # The 2-epoch job continues the 1-epoch job's run: two levels, each its own Slurm job.
    grid = sweep_overrides(tiny_mnist, *SLURM, "scheduler=none", "trainer.max_epochs=1,2")
    result = run_command("mnist_cnn.train", "-m", *grid, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "outputs" / "sweeps").iterdir()
    rows = read_summary(sweep_dir)
    assert [(row["status"], row["epochs"]) for row in rows] == [("ok", "1"), ("ok", "2")]
    assert len(list((sweep_dir / ".submitit").glob("*/*_result.pkl"))) == 2  # each job came back from Slurm
    first, second = SweepDir(sweep_dir).jobs()
    assert OmegaConf.load(second.config_file).continue_from == str(first.path)
    assert "torch threads for this job: 1" in (second.path / "train.log").read_text()
    assert (sweep_dir / "selected_model" / "metrics.json").is_file()
