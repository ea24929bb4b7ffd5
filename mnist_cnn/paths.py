"""Where runs land: a unique directory for every run, even two started in the same second."""

from __future__ import annotations

import secrets
import time

from omegaconf import OmegaConf


def or_default(value: str | None, default: str) -> str:
    """`${or_default:${resume},<new dir>}`: a resumed run's own directory, else a new one (oc.select returns a null instead of its default)."""
    return default if value is None else value


def hydra_record(resume: str | None) -> str:
    """Hydra's record of a command (`.hydra/`); a resumed run adds its own instead of overwriting the original's."""
    return ".hydra" if resume is None else f".hydra/resumed_{time.strftime('%Y-%m-%d_%H-%M-%S')}_{secrets.token_hex(3)}"


def register_resolvers() -> None:
    """`${unique:}` is a short random tag, cached so every use within one process agrees; see the others above."""
    if not OmegaConf.has_resolver("unique"):
        OmegaConf.register_new_resolver("unique", lambda: secrets.token_hex(3), use_cache=True)
    if not OmegaConf.has_resolver("or_default"):
        OmegaConf.register_new_resolver("or_default", or_default)
    if not OmegaConf.has_resolver("hydra_record"):
        OmegaConf.register_new_resolver("hydra_record", hydra_record, use_cache=True)
