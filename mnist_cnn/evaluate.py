"""Evaluate a finished run on the official test set: `python -m mnist_cnn.evaluate run_dir=<dir>`.

The model is rebuilt from the config saved in the run and its best checkpoint; the result is
printed and written to `<run_dir>/eval.json`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    from omegaconf import OmegaConf

    from mnist_cnn.cli import parse_arguments
    from mnist_cnn.data import MNISTDataModule
    from mnist_cnn.errors import UserError
    from mnist_cnn.evaluation import evaluate
    from mnist_cnn.reporting import write_json
    from mnist_cnn.rundir import best_checkpoint, load_run_module

USAGE = "usage: python -m mnist_cnn.evaluate run_dir=<run directory> [data.root=<MNIST root>]"


def evaluate_run(run_dir: Path, data_root: str | None = None) -> dict[str, float]:
    """Test-set accuracy and loss of a run's best checkpoint, also written to eval.json."""
    cfg, module = load_run_module(run_dir)
    datamodule = MNISTDataModule(**{**OmegaConf.to_container(cfg.data, resolve=True), "root": data_root or cfg.data.root}, seed=cfg.seed)
    datamodule.setup()
    images, labels = datamodule.splits["test"]
    scores = evaluate(module, images, labels, datamodule.eval_batch_size)
    result = {"test/acc": scores["acc"], "test/loss": scores["loss"], "checkpoint": str(best_checkpoint(run_dir))}
    write_json(run_dir / "eval.json", result)
    return result


def main(argv: list[str]) -> None:
    args = parse_arguments(argv, ("run_dir",), USAGE)
    try:
        result = evaluate_run(Path(str(args.run_dir)), OmegaConf.select(args, "data.root"))
    except UserError as error:
        sys.exit(f"error: {error}")
    print(f"test/acc {result['test/acc']:.4f}  test/loss {result['test/loss']:.4f}  ({result['checkpoint']})")


if __name__ == "__main__":
    main(sys.argv[1:])
