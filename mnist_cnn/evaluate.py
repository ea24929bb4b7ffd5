"""Evaluate a finished run on a test set: `python -m mnist_cnn.evaluate run_dir=<dir> [data=<name>]`.

The model is rebuilt from the config saved in the run and its best checkpoint. Without `data=` it
is tested on its own data set's test set and the result goes to the run's eval.json; with
`data=usps` (or any other data set whose classes the run knows) the other set's test images are
converted to what the model was trained on (training/convert.py) and the result goes to
eval_usps.json beside it, so a digit model's generality can be read off several such files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    import torch
    from omegaconf import OmegaConf
    from torch import Tensor

    from mnist_cnn.cli import Command, Option, parse_arguments, user_errors
    from mnist_cnn.errors import UserError
    from mnist_cnn.rundir import RunDir, write_json
    from mnist_cnn.training.checkpoints import load_run_module
    from mnist_cnn.training.convert import conform
    from mnist_cnn.training.data import download_once, load_split, standardize, to_unit
    from mnist_cnn.training.datasets import DataSet, describe
    from mnist_cnn.training.scoring import evaluate

COMMAND = Command(
    "evaluate",
    "Test-set accuracy and loss of a finished run's best checkpoint: on its own data set into <run_dir>/eval.json, "
    "or on another (data=<name>) into <run_dir>/eval_<name>.json.",
    {
        "run_dir": Option("a run directory, or a sweep's selected_model folder", required=True),
        "data.name": Option("another data set to test on, as for train (data=usps is short for data.name=usps)"),
        "data.split": Option("that data set's split, for data=emnist (digits, letters, balanced, ...)"),
        "data.root": Option("where the data set's files are (default: the root the run trained with)"),
        "data.download": Option("true: download the data set first if its files are missing", default=False),
    },
    shorthands={"data": "data.name"},
)


def relabel(labels: Tensor, source: DataSet, classes: list[str]) -> Tensor:
    """The test set's labels as the run's output indices, matched by class name (an EMNIST model knows MNIST's 7)."""
    unknown = [name for name in source.classes if name not in classes]
    if unknown:
        raise UserError(
            f"data={source.label}'s classes {', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''} are not "
            f"among the run's {len(classes)} classes: test it on a data set whose classes it was trained on"
        )
    return torch.tensor([classes.index(name) for name in source.classes])[labels]


def evaluate_run(
    run_dir: Path, data_root: str | None = None, data: Mapping[str, Any] | None = None, download: bool = False
) -> dict[str, Any]:
    """A run's best checkpoint on its own test set (into eval.json) or on another's (into eval_<name>.json)."""
    run = RunDir(run_dir)
    cfg, module = load_run_module(run.path)
    trained_on = describe(cfg.data)
    source = describe({"name": trained_on.name, **data}) if data else trained_on
    root = data_root or cfg.data.root
    if download:
        download_once(source, root)
    images, labels = load_split(source, root, "test")
    classes = run.read_classes() or list(trained_on.classes)
    pixels = standardize(conform(to_unit(images), source, trained_on), cfg.data.mean, cfg.data.std)
    scores = evaluate(module, pixels, relabel(labels, source, classes), int(cfg.data.eval_batch_size))
    result = {
        "data": source.label,
        "test/acc": scores["acc"],
        "test/loss": scores["loss"],
        "test/acc_per_class": {name: scores["per_class"][classes.index(name)] for name in source.classes},
        "input": f"{source.channels}x{source.size}x{source.size} as {trained_on.channels}x{trained_on.size}x"
        f"{trained_on.size}",
        "checkpoint": str(run.best_checkpoint()),
    }
    write_json(run.eval_file_on(source.label) if data else run.eval_file, result)
    return result


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        data = {key: value for key, value in args.data.items() if key in ("name", "split") and value is not None}
        result = evaluate_run(Path(str(args.run_dir)), OmegaConf.select(args, "data.root"), data, args.data.download)
    print(
        f"{result['data']}: test/acc {result['test/acc']:.4f}  test/loss {result['test/loss']:.4f}  "
        f"({result['checkpoint']})"
    )


if __name__ == "__main__":
    main()
