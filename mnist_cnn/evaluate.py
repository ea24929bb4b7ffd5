"""Evaluate a finished run on the official test set: `python -m mnist_cnn.evaluate run_dir=<dir>`.

The model is rebuilt from the config saved in the run and its best checkpoint; the result is
printed and written to the run's eval.json.
"""

from __future__ import annotations

from pathlib import Path

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    from omegaconf import OmegaConf

    from mnist_cnn.cli import Command, Option, parse_arguments, user_errors
    from mnist_cnn.rundir import RunDir, write_json
    from mnist_cnn.training.checkpoints import load_run_module
    from mnist_cnn.training.data import MNISTDataModule
    from mnist_cnn.training.scoring import evaluate

COMMAND = Command(
    "evaluate",
    "Test-set accuracy and loss of a finished run's best checkpoint, written to <run_dir>/eval.json.",
    {
        "run_dir": Option("a run directory, or a sweep's selected_model folder", required=True),
        "data.root": Option("where MNIST is (default: the root the run trained with)"),
    },
)


def evaluate_run(run_dir: Path, data_root: str | None = None) -> dict[str, float]:
    """Test-set accuracy and loss of a run's best checkpoint, also written to eval.json."""
    run = RunDir(run_dir)
    cfg, module = load_run_module(run.path)
    datamodule = MNISTDataModule(
        **{**OmegaConf.to_container(cfg.data, resolve=True), "root": data_root or cfg.data.root}, seed=cfg.seed
    )
    datamodule.setup()
    images, labels = datamodule.splits["test"]
    scores = evaluate(module, images, labels, datamodule.eval_batch_size)
    result = {"test/acc": scores["acc"], "test/loss": scores["loss"], "checkpoint": str(run.best_checkpoint())}
    write_json(run.eval_file, result)
    return result


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        result = evaluate_run(Path(str(args.run_dir)), OmegaConf.select(args, "data.root"))
    print(f"test/acc {result['test/acc']:.4f}  test/loss {result['test/loss']:.4f}  ({result['checkpoint']})")


if __name__ == "__main__":
    main()
