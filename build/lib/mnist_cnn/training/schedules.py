"""Learning-rate schedules, each a factory of Lightning's scheduler config from an optimizer and the run's length.

The `scheduler` config node names one of these with `_partial_: true`; the module calls it with the
optimizer and the run's total optimizer steps. Each factory also says how often Lightning steps it,
so the config holds only constructor arguments. torch is imported inside the factories: the resume
check asks `spans_the_run` before torch is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LightningSchedule = dict[str, Any]  # {"scheduler": ..., "interval": "step" | "epoch"}


def one_cycle(
    optimizer: Any,
    total_steps: int,
    max_lr: float,
    pct_start: float = 0.25,
    div_factor: float = 25.0,
    final_div_factor: float = 1000.0,
) -> LightningSchedule:
    """Warm up to max_lr, then anneal, over the whole run, stepped after every batch.

    torch's OneCycleLR divides by (warm-up steps - 1), so a warm-up of exactly one step (tiny data
    under DDP gets there) raises ZeroDivisionError; a spare step the run never takes avoids it.
    """
    from torch.optim.lr_scheduler import OneCycleLR

    length = total_steps + 1 if pct_start * total_steps == 1 else total_steps
    schedule = OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=length,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
    return {"scheduler": schedule, "interval": "step"}


def cosine(optimizer: Any, total_steps: int, eta_min: float = 0.0) -> LightningSchedule:
    """Cosine decay from the optimizer's lr to eta_min over the whole run, stepped after every batch."""
    from torch.optim.lr_scheduler import CosineAnnealingLR

    return {"scheduler": CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=eta_min), "interval": "step"}


def step_decay(optimizer: Any, total_steps: int, step_size: int = 1, gamma: float = 0.7) -> LightningSchedule:
    """Multiply the lr by gamma every step_size epochs, whatever the run's length."""
    from torch.optim.lr_scheduler import StepLR

    return {"scheduler": StepLR(optimizer, step_size=step_size, gamma=gamma), "interval": "epoch"}


RUN_LENGTH_SCHEDULES = (one_cycle, cosine)  # sized to the run: a different max_epochs is a different schedule


def target_of(factory: Any) -> str:
    """The `_target_` that names a factory in a config."""
    return f"{factory.__module__}.{factory.__name__}"


def spans_the_run(scheduler: Mapping[str, Any]) -> bool:
    """True when the schedule is sized to the run's length (so max_epochs cannot change on resume)."""
    return scheduler.get("_target_") in {target_of(factory) for factory in RUN_LENGTH_SCHEDULES}
