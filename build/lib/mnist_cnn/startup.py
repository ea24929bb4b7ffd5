"""Quicker commands: keep Python's garbage collector off what importing torch and Lightning creates.

Those imports create about half a million objects that live until the process exits, yet the
cyclic collector walked all of them seven times during the imports (0.7 of 4 s here) and again
while the interpreter shut down (1.1 s). Each entry point imports inside `long_lived_imports()`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived_imports() -> Iterator[None]:
    """Pause collection while the block imports, then freeze everything alive so no collection walks it again.

    The price: the few thousand objects the imports left as cyclic garbage stay in memory.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
