"""Accuracy on the real-world digits: a plain resize vs our preprocessing, the default vs the wild model.

    python -m benchmarks.real_world [default=<run dir>] [wild=<run dir>] [data_root=../shared/data]

A model not given as a run directory is trained first (`experiment=wild` for the wild one) into
outputs/real_world/<name>. Prints accuracy per source and overall for every combination.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from skimage import transform

from benchmarks.common import DEFAULT_DATA, REPO
from mnist_cnn.wild.classifier import load_classifier, probabilities
from mnist_cnn.wild.images import read_image
from mnist_cnn.wild.preprocess import SIZE, to_mnist


def plain_resize(gray: np.ndarray) -> np.ndarray:
    """The naive baseline: squash the whole image to 28x28, nothing else."""
    return transform.resize(gray, (SIZE, SIZE), anti_aliasing=True).astype(np.float32)


RECIPES = {"default": [], "wild": ["experiment=wild"]}
VIEWS = {"resize": plain_resize, "preprocess": to_mnist}


def train(name: str, data_root: str) -> Path:
    """Train the named recipe on MNIST (trainer defaults) and return its run directory."""
    run_dir = REPO / "outputs" / "real_world" / name
    command = [
        sys.executable,
        "-m",
        "mnist_cnn.train",
        *RECIPES[name],
        f"data.root={data_root}",
        "data.download=false",
        f"hydra.run.dir={run_dir}",
    ]
    subprocess.run(command, cwd=REPO, check=True)
    return run_dir


def load_labelled(folder: Path) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Grayscale images, labels and source names from the set's labels.csv."""
    with (folder / "labels.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    grays = [read_image(folder / row["path"]) for row in rows]
    return grays, np.array([int(row["label"]) for row in rows]), [row["path"].split("/")[0] for row in rows]


def accuracy_by_source(correct: np.ndarray, sources: list[str]) -> dict[str, float]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for source, hit in zip(sources, correct, strict=True):
        groups[source].append(bool(hit))
    return {
        **{source: float(np.mean(hits)) for source, hits in sorted(groups.items())},
        "overall": float(np.mean(correct)),
    }


def print_table(columns: dict[str, dict[str, float]], counts: dict[str, int]) -> None:
    names = list(columns)
    width = max(len(source) for source in counts)
    print(f"{'source':<{width}}  {'n':>3}  " + "  ".join(f"{name:>18}" for name in names))
    for source, count in counts.items():
        print(f"{source:<{width}}  {count:>3}  " + "  ".join(f"{columns[name][source]:>18.1%}" for name in names))


def main(argv: list[str]) -> None:
    args = OmegaConf.from_cli(argv)
    data_root = str(args.get("data_root", DEFAULT_DATA))
    grays, labels, sources = load_labelled(Path(data_root) / "real-world-digits")
    views = {view: np.stack([prepare(gray) for gray in grays]) for view, prepare in VIEWS.items()}
    columns = {}
    for name in RECIPES:
        run_dir = Path(str(args[name])) if name in args else train(name, data_root)
        classifier = load_classifier(run_dir)
        for view, digits in views.items():
            predicted = probabilities(classifier, digits).argmax(1)
            columns[f"{name}+{view}"] = accuracy_by_source(predicted == labels, sources)
    counts = {**{source: sources.count(source) for source in sorted(set(sources))}, "overall": len(sources)}
    print_table(columns, counts)


if __name__ == "__main__":
    main(sys.argv[1:])
