"""What the benchmarks share: composing our config outside a Hydra run, and a timer."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from mnist_cnn.paths import register_resolvers

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


def compose_config(*overrides: str) -> DictConfig:
    """The run config `python -m mnist_cnn.train <overrides>` would see."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """Yields a dict whose "seconds" is filled in when the block ends."""
    timing: dict[str, float] = {}
    started = time.perf_counter()
    yield timing
    timing["seconds"] = time.perf_counter() - started
