"""What the benchmarks share: where the repository and the data are, and a timer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """Yields a dict whose "seconds" is filled in when the block ends."""
    timing: dict[str, float] = {}
    started = time.perf_counter()
    yield timing
    timing["seconds"] = time.perf_counter() - started
