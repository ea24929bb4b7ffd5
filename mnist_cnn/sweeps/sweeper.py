"""The grid sweeper of every `-m` grid: Hydra's basic grid, resumable, with shared epoch prefixes.

It composes every job's config first (as Hydra's basic sweeper does to validate them), plans the
jobs (sweeps/plan.py: which ones continue a shorter job's run), saves the plan in the sweep
directory, and hands the launcher one level of jobs at a time, each job that continues another
with `continue_from=<that job's directory>`. Any launcher runs the batches: basic, joblib,
submitit or SLURM.

`-m resume=<sweep dir>` starts the sweep's own command again with `hydra.sweeper.resume=true`
(sweeps/resume.py): finished jobs are kept, an interrupted one continues from its last.ckpt with
`resume=<its directory>`, failed and never started ones run. A SIGTERM or Ctrl+C noted here
launches no further batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf

from mnist_cnn.cli import user_errors
from mnist_cnn.errors import UserError
from mnist_cnn.rundir import RunDir, SweepDir
from mnist_cnn.sweeps.plan import (
    GridJob,
    Launch,
    PlannedJob,
    consecutive,
    describe_sharing,
    grid_difference,
    levels,
    plan_jobs,
    plan_record,
    planned_jobs,
    why_not_shared,
)
from mnist_cnn.sweeps.resume import quoted, resume_command
from mnist_cnn.sweeps.stop import STOP
from mnist_cnn.training.resume import unfinished

log = logging.getLogger(__name__)


class GridSweeper(BasicSweeper):
    """Hydra's basic sweeper's grid and batching, run level by level from a saved plan (see the module)."""

    def __init__(
        self,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
        share_prefixes: bool = True,
        resume: bool = False,
    ) -> None:
        super().__init__(max_batch_size, params)
        self.share_prefixes, self.resume = share_prefixes, resume
        self.job_dirs: dict[int, RunDir] = {}

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        sweep_dir = SweepDir(Path(self.config.hydra.sweep.dir).absolute())
        grid = self.grid(arguments)
        plan = plan_jobs(grid)
        with user_errors():
            done = self.resume_state(sweep_dir, plan) if self.resume else self.start(sweep_dir)
        sweep_dir.file(sweep_dir.STOP).unlink(missing_ok=True)  # an earlier session's
        STOP.watch_signals(sweep_dir.file(sweep_dir.STOP))
        sweep_dir.write_plan(plan_record(plan, time.time(), done))
        sharing = describe_sharing(grid, plan)
        if sharing:
            log.info(sharing)
        returns = []
        for level in levels(plan):
            for batch in consecutive(self.launches(level, done), self.max_batch_size):
                if STOP.requested:  # a signal: no further batch
                    return returns
                returns.append(self.run_batch(batch))
        return returns

    def launches(self, level: list[PlannedJob], done: set[int]) -> Iterator[Launch]:
        """The level's jobs still to run, decided as the launcher gets them: after the levels before have run."""
        for job in level:
            if job.num not in done:
                yield from self.launch_of(job)

    def grid(self, arguments: list[str]) -> list[GridJob]:
        """Every combination of the grid, in Hydra's order, with what its composed config allows."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        (combinations,) = self.split_arguments(overrides, None)
        return [self.grid_job(job_overrides) for job_overrides in combinations]

    def grid_job(self, overrides: list[str]) -> GridJob:
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        reason = why_not_shared(cfg) if self.share_prefixes else "hydra.sweeper.share_prefixes is false"
        return GridJob(tuple(overrides), cfg.trainer.max_epochs, reason)

    def start(self, sweep_dir: SweepDir) -> set[int]:
        """A new sweep: refuse a directory that holds one, record the config as Hydra's basic sweeper does."""
        if sweep_dir.file(sweep_dir.PLAN).exists():
            raise UserError(
                f"hydra.sweep.dir={sweep_dir.path} holds a sweep already: continue it with "
                f"{resume_command(sweep_dir)}, or choose a new hydra.sweep.dir"
            )
        sweep_dir.path.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir.file(sweep_dir.MULTIRUN))
        return set()

    def resume_state(self, sweep_dir: SweepDir, plan: list[PlannedJob]) -> set[int]:
        """The numbers of the finished jobs a resumed sweep keeps, after checking it is the same grid."""
        if not sweep_dir.file(sweep_dir.PLAN).is_file():
            raise UserError(f"resume={sweep_dir.path} has no {sweep_dir.PLAN}: it was not started by this mnist_cnn")
        difference = grid_difference(planned_jobs(sweep_dir.read_plan()), plan)
        if difference:
            raise UserError(
                f"resume={sweep_dir.path} was started by another version of its grid ({difference}): "
                "start a new sweep, or restore the grid it started with"
            )
        self.job_dirs = sweep_dir.numbered_jobs()
        done = {num for num, job in self.job_dirs.items() if job.finished()}
        failed = [num for num, job in self.job_dirs.items() if job.status() == "failed"]
        log.info(
            "resuming %s: %d of %d jobs finished and kept, %d failed and run again, %d to run",
            sweep_dir.path,
            len(done),
            len(plan),
            len(failed),
            len(plan) - len(done) - len(failed),
        )
        return done

    def launch_of(self, job: PlannedJob) -> list[Launch]:
        """The job with the overrides it runs with now, or nothing when the run it continues did not finish."""
        existing = self.job_dirs.get(job.num)
        if existing and existing.status() == "failed":
            log.info("job %d failed before (%s): running it again", job.num, existing.read_metrics().get("error"))
            existing.metrics_file.unlink(missing_ok=True)  # a second resume at once may have removed it
        if existing and existing.last_checkpoint.is_file():
            return [(job, [*job.overrides, quoted("resume", str(existing.path))])]
        if job.after is None:
            return [(job, list(job.overrides))]
        source = self.job_dirs.get(job.after)
        problem = unfinished(source, job.max_epochs - job.epochs) if source else "it never started"
        if problem is None:
            return [(job, [*job.overrides, quoted("continue_from", str(source.path))])]
        if source and source.status() is not None:
            log.info(
                "job %d trains all its epochs itself: job %d, whose run it would continue, %s",
                job.num,
                job.after,
                problem,
            )
            return [(job, list(job.overrides))]
        log.warning(
            "job %d not run: job %d, whose run it continues, %s (resume the sweep later)", job.num, job.after, problem
        )
        return []

    def run_batch(self, batch: list[Launch]) -> Sequence[JobReturn]:
        """Launch jobs with consecutive numbers; remember where each ran, for the jobs that continue them."""
        results = self.launcher.launch([overrides for _, overrides in batch], initial_job_idx=batch[0][0].num)
        for result in results:
            self.job_dirs[result.hydra_cfg.hydra.job.num] = RunDir(result.hydra_cfg.hydra.runtime.output_dir)
            _ = result.return_value  # a job that raised raises here, as with Hydra's basic sweeper
        return results
