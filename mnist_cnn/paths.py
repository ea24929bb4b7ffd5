"""Where runs land: a unique directory for every run, even two started in the same second."""

from __future__ import annotations

import secrets

from omegaconf import OmegaConf


def register_resolvers() -> None:
    """`${unique:}` is a short random tag, cached so every use within one process agrees."""
    if not OmegaConf.has_resolver("unique"):
        OmegaConf.register_new_resolver("unique", lambda: secrets.token_hex(3), use_cache=True)
