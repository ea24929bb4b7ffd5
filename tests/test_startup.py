"""Entry points import under `long_lived_imports`: collection paused, then everything imported frozen."""

from __future__ import annotations

import gc

import pytest

from mnist_cnn.startup import long_lived_imports


@pytest.fixture(autouse=True)
def nothing_frozen_before_or_after():
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


def test_what_the_block_creates_is_frozen_and_collection_resumes():
    with long_lived_imports():
        assert not gc.isenabled()
        long_lived = [[] for _ in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(long_lived)


def test_collection_resumes_when_an_import_fails():
    with pytest.raises(ImportError), long_lived_imports():
        import mnist_cnn.no_such_module  # noqa: F401
    assert gc.isenabled()
