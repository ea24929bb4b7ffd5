"""Shared fixtures: tiny synthetic MNIST in the real IDX format, in-process training, and our real commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_files import write_split

from mnist_cnn.training.datasets import CATALOGUE

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RUN_WRITTEN_BY_0_1_0 = Path(__file__).resolve().parent / "fixtures" / "run_written_by_0.1.0"


def synthetic_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: class k is a bright 8x8 square at one of ten positions, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count)
    images = rng.integers(0, 40, size=(count, 28, 28))
    for image, label in zip(images, labels, strict=True):
        row, col = 2 + 12 * (label // 5), 1 + 5 * (label % 5)
        image[row : row + 8, col : col + 6] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


def make_mnist_root(root: Path, train: int = 600, test: int = 200) -> Path:
    """MNIST's four IDX files of synthetic digits (the data the saved 0.1.0 run was trained on)."""
    for split, count, seed in (("train", train, 0), ("test", test, 1)):
        images, labels = synthetic_digits(count, seed)
        write_split(CATALOGUE["mnist"], root, split, images[:, None], labels)
    return root


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    """A data root with 600 training and 200 test synthetic images."""
    return make_mnist_root(tmp_path_factory.mktemp("tiny_mnist"))


@pytest.fixture
def real_mnist() -> Path:
    if not (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"real MNIST not found at {SHARED_DATA} (the shared data folder beside the repo)")
    return SHARED_DATA


def command_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}


def run_command(module: str, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_command(module: str, *args: str, cwd: Path) -> subprocess.Popen:
    """Start `python -m <module> args...` in the background, for tests that signal or kill it."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def quick_overrides(data_root: Path, *extra: str) -> list[str]:
    """Overrides for a seconds-long run on the tiny data set."""
    return [
        f"data.root={data_root}",
        "data.download=false",
        "data.val_size=100",
        "data.batch_size=32",
        "trainer.max_epochs=2",
        "trainer.accelerator=cpu",
        "trainer.log_every_n_steps=5",
        *extra,
    ]


def train_in_process(run_dir: Path, *overrides: str) -> Path:
    """Train as `python -m mnist_cnn.train <overrides>` would, inside this process, into run_dir."""
    from mnist_cnn.training.checks import prepare
    from mnist_cnn.training.config import compose_config
    from mnist_cnn.training.recipe import run

    run(prepare(compose_config(*overrides), run_dir, overrides), run_dir)
    return run_dir


@pytest.fixture(scope="session")
def trained_run(tiny_mnist, tmp_path_factory) -> Path:
    """A two-epoch run on the tiny data, shared by every test of a command that reads a run directory."""
    return train_in_process(tmp_path_factory.mktemp("trained") / "run", *quick_overrides(tiny_mnist))


@pytest.fixture(scope="session")
def mnist_model(tmp_path_factory) -> Path:
    """experiment=fast trained on real MNIST (one epoch, about 99%): a model that really reads digits."""
    if not (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"real MNIST not found at {SHARED_DATA} (the shared data folder beside the repo)")
    run_dir = tmp_path_factory.mktemp("mnist_model") / "run"
    return train_in_process(
        run_dir, "experiment=fast", f"data.root={SHARED_DATA}", "data.download=false", "trainer.accelerator=cpu"
    )


@pytest.fixture
def real_world_digits() -> Path:
    folder = SHARED_DATA / "real-world-digits"
    if not (folder / "labels.csv").is_file():
        pytest.skip(f"real-world digits not found at {folder} (the shared data folder beside the repo)")
    return folder
