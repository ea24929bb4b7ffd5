"""Evaluate a finished run: `python -m mnist_cnn.evaluate run_dir=<dir> [ckpt=best|last|<file>] [split=test]`.

The model is rebuilt from the config saved in the run and its best checkpoint (or `ckpt=last` or a
file); the result is printed and written to the run's eval.json, which says the split and checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    from omegaconf import OmegaConf

    from mnist_cnn.cli import Command, Option, parse_arguments, user_errors
    from mnist_cnn.errors import UserError
    from mnist_cnn.rundir import RunDir, write_json
    from mnist_cnn.training.checkpoints import load_run_module
    from mnist_cnn.training.data import MNISTDataModule
    from mnist_cnn.training.scoring import evaluate

SPLITS = ("train", "val", "test")
COMMAND = Command(
    "evaluate",
    "Accuracy and loss of a finished run on one split, written to <run_dir>/eval.json.",
    {
        "run_dir": Option("a run directory, or a sweep's selected_model folder", required=True),
        "ckpt": Option("best, last, or the path of a .ckpt file of this run's model", default="best"),
        "split": Option("train, val (the run's own seeded split) or test (the official 10k)", default="test"),
        "data.root": Option("where MNIST is (default: the root the run trained with)"),
    },
)


def evaluate_run(
    run_dir: Path, data_root: str | None = None, ckpt: str = "best", split: str = "test"
) -> dict[str, Any]:
    """Accuracy and loss of one checkpoint of a run on one split, also written to eval.json (saying which)."""
    if split not in SPLITS:
        raise UserError(f"split={split} is not known: use one of {', '.join(SPLITS)}")
    run = RunDir(run_dir)
    checkpoint = run.checkpoint(ckpt)
    cfg, module = load_run_module(run.path, checkpoint)
    data = {**OmegaConf.to_container(cfg.data, resolve=True), "root": data_root or cfg.data.root}
    datamodule = MNISTDataModule(**data, seed=cfg.seed)
    datamodule.setup()
    images, labels = datamodule.splits[split]
    scores = evaluate(module, images, labels, datamodule.eval_batch_size)
    result = {
        f"{split}/acc": scores.acc,
        f"{split}/loss": scores.loss,
        "split": split,
        "checkpoint": str(checkpoint),
    }
    write_json(run.eval_file, result)
    return result


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        result = evaluate_run(
            Path(str(args.run_dir)), OmegaConf.select(args, "data.root"), str(args.ckpt), str(args.split)
        )
    acc, loss = (result[f"{result['split']}/{name}"] for name in ("acc", "loss"))
    print(f"{result['split']}/acc {acc:.4f}  {result['split']}/loss {loss:.4f}  ({result['checkpoint']})")


if __name__ == "__main__":
    main()
