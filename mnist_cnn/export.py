"""Export a run for use outside Python training code: `python -m mnist_cnn.export run_dir=<dir> format=onnx|torchscript`.

The exported model is mnist_cnn.inference.PixelClassifier: it takes (N, 1, 28, 28) pixels in
[0, 1] (what mnist_cnn.preprocess produces) and returns ten probabilities per image, with the
run's normalization constants baked in, so no caller has to know them.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    import torch
    from omegaconf import OmegaConf

    from mnist_cnn.cli import parse_arguments
    from mnist_cnn.errors import UserError
    from mnist_cnn.inference import PixelClassifier, load_classifier

USAGE = "usage: python -m mnist_cnn.export run_dir=<run directory> format=onnx|torchscript [output=<file>]"
FILE_NAMES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
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
    path = output or run_dir / FILE_NAMES[format]
    with torch.no_grad():
        EXPORTERS[format](classifier, path)
    return path


def main(argv: list[str]) -> None:
    args = parse_arguments(argv, ("run_dir", "format"), USAGE)
    output = OmegaConf.select(args, "output")
    try:
        path = export_run(Path(str(args.run_dir)), str(args.format), Path(str(output)) if output else None)
    except UserError as error:
        sys.exit(f"error: {error}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
