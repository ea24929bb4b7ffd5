"""Evaluate a finished run: `python -m mnist_cnn.evaluate run_dir=<dir> [ckpt=...] [split=...] [data=<name>]`.

The model is rebuilt from the config saved in the run and its best checkpoint (or `ckpt=last` or a
file). Without `data=` it is measured on a split of its own data set (`split=train|val|test`) and
the result goes to the run's eval.json, which says the split and checkpoint; with `data=usps` (or
any other data set whose classes the run knows) the other set's test images are converted to what
the model was trained on (training/convert.py) and the result goes to eval_usps.json beside it, so
a digit model's generality can be read off several such files.
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
    from mnist_cnn.training.data import ImageDataModule, download_once, load_split, standardize, to_unit
    from mnist_cnn.training.datasets import DataSet, describe
    from mnist_cnn.training.scoring import evaluate

SPLITS = ("train", "val", "test")
COMMAND = Command(
    "evaluate",
    "Accuracy and loss of a finished run: on a split of its own data set into <run_dir>/eval.json, or on another "
    "data set's test set (data=<name>) into <run_dir>/eval_<name>.json.",
    {
        "run_dir": Option("a run directory, or a sweep's selected_model folder", required=True),
        "ckpt": Option("best, last, or the path of a .ckpt file of this run's model", default="best"),
        "split": Option("train, val (the run's own seeded split) or test (the official test set)", default="test"),
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
    run_dir: Path,
    data_root: str | None = None,
    data: Mapping[str, Any] | None = None,
    download: bool = False,
    ckpt: str = "best",
    split: str = "test",
) -> dict[str, Any]:
    """One checkpoint of a run on a split of its own data set (into eval.json) or on another's test set
    (into eval_<name>.json); the file says which."""
    if split not in SPLITS:
        raise UserError(f"split={split} is not known: use one of {', '.join(SPLITS)}")
    if data and split != "test":
        raise UserError(f"split={split} is for the run's own data set: another data set is measured on its test set")
    run = RunDir(run_dir)
    checkpoint = run.checkpoint(ckpt)
    cfg, module = load_run_module(run.path, checkpoint)
    trained_on = describe(cfg.data)
    source = describe({"name": trained_on.name, **data}) if data else trained_on
    root = data_root or cfg.data.root
    if download:
        download_once(source, root)
    classes = run.read_classes() or list(trained_on.classes)
    pixels, labels = split_to_measure(cfg, source, trained_on, root, split, classes)
    scores = evaluate(module, pixels, labels, int(cfg.data.eval_batch_size))
    per_class = scores.per_class_acc(tuple(classes))
    result = {
        "data": source.label,
        "split": split,
        f"{split}/acc": scores.acc,
        f"{split}/loss": scores.loss,
        f"{split}/acc_per_class": {name: per_class[name] for name in source.classes},
        "input": f"{source.channels}x{source.size}x{source.size} as {trained_on.channels}x{trained_on.size}x"
        f"{trained_on.size}",
        "checkpoint": str(checkpoint),
    }
    write_json(run.eval_file_on(source.label) if data else run.eval_file, result)
    return result


def split_to_measure(
    cfg: Any, source: DataSet, trained_on: DataSet, root: str, split: str, classes: list[str]
) -> tuple[Tensor, Tensor]:
    """Normalized images and the run's labels: the run's own seeded train/val split, or a test set converted."""
    if split != "test":
        datamodule = ImageDataModule(**{**OmegaConf.to_container(cfg.data, resolve=True), "root": root}, seed=cfg.seed)
        datamodule.setup()
        return datamodule.splits[split]
    images, labels = load_split(source, root, "test")
    pixels = standardize(conform(to_unit(images), source, trained_on), cfg.data.mean, cfg.data.std)
    return pixels, relabel(labels, source, classes)


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        data = {key: value for key, value in args.data.items() if key in ("name", "split") and value is not None}
        result = evaluate_run(
            Path(str(args.run_dir)),
            OmegaConf.select(args, "data.root"),
            data,
            args.data.download,
            str(args.ckpt),
            str(args.split),
        )
    split = result["split"]
    acc, loss = result[f"{split}/acc"], result[f"{split}/loss"]
    print(f"{result['data']}: {split}/acc {acc:.4f}  {split}/loss {loss:.4f}  ({result['checkpoint']})")


if __name__ == "__main__":
    main()
