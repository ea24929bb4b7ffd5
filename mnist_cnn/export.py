"""Export a run for use outside Python: `python -m mnist_cnn.export run_dir=<dir> format=onnx|torchscript`.

The exported model is mnist_cnn.wild.classifier.PixelClassifier: it takes (N, 1, 28, 28) pixels
in [0, 1] (what mnist_cnn.wild.preprocess produces) and returns one probability per class of the run
for each image, with the conversion to the run's own input and its normalization constants baked
in, so no caller has to know them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    import torch

    from mnist_cnn.cli import Command, Option, parse_arguments, user_errors
    from mnist_cnn.errors import UserError
    from mnist_cnn.rundir import RunDir
    from mnist_cnn.wild.classifier import PixelClassifier, load_classifier

COMMAND = Command(
    "export",
    "Write a run's model as ONNX or TorchScript: (N, 1, 28, 28) pixels in [0, 1] -> (N, classes) probabilities.",
    {
        "run_dir": Option("a run directory, or a sweep's selected_model folder", required=True),
        "format": Option("onnx or torchscript", required=True),
        "output": Option("the file to write (default: <run_dir>/model.onnx or model.torchscript.pt)"),
    },
)
EXAMPLE_INPUT = torch.rand(2, 1, 28, 28)


def export_onnx(classifier: PixelClassifier, path: Path) -> None:
    """ONNX with a dynamic batch dimension; input `pixels`, output `probabilities`."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    torch.onnx.export(
        classifier,
        (EXAMPLE_INPUT,),
        str(path),
        input_names=["pixels"],
        output_names=["probabilities"],
        dynamic_shapes={"pixels": {0: batch}},
        dynamo=True,
        external_data=False,
        verbose=False,
    )


def export_torchscript(classifier: PixelClassifier, path: Path) -> None:
    """A traced TorchScript module (the networks have no data-dependent control flow).

    TorchScript is deprecated in favour of torch.export, but it is still what many C++ and mobile
    runtimes load, so its FutureWarning is silenced here rather than shown on every export.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.trace(classifier, EXAMPLE_INPUT).save(str(path))


EXPORTERS = {"onnx": export_onnx, "torchscript": export_torchscript}


def export_run(run_dir: Path, format: str, output: Path | None = None) -> Path:
    """Write the run's model in `format` (to <run_dir>/model.onnx or model.torchscript.pt unless given)."""
    if format not in EXPORTERS:
        raise UserError(f"format={format} is not known: use one of {', '.join(EXPORTERS)}")
    classifier = load_classifier(run_dir)
    path = output or RunDir(run_dir).export_file(format)
    with torch.no_grad():
        EXPORTERS[format](classifier, path)
    return path


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        path = export_run(Path(str(args.run_dir)), str(args.format), Path(str(args.output)) if args.output else None)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
