"""Read digits in real images: `python -m mnist_cnn.predict model=<run dir> inputs=<file, folder or glob>`.

Each image is preprocessed into an MNIST-style 28x28 digit (mnist_cnn.wild.preprocess) and
classified by the run's best checkpoint, which answers with its own class names (a letters
model's `k`, not 10). A file that cannot be read gets a one-line error and the others are still
predicted; the exit status is then 1 (EXIT_SOME_FAILED).
"""

from __future__ import annotations

import csv
import glob
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    import numpy as np
    from PIL import Image

    from mnist_cnn.cli import Command, Option, parse_arguments, user_errors
    from mnist_cnn.errors import EXIT_SOME_FAILED, UserError, first_line
    from mnist_cnn.wild.classifier import load_classifier, probabilities
    from mnist_cnn.wild.images import read_image
    from mnist_cnn.wild.preprocess import to_mnist

COMMAND = Command(
    "predict",
    "Read the character in each image: prints a table, optionally writes CSV rows path,label,confidence,top3.",
    {
        "model": Option("a run directory, or a sweep's selected_model folder", required=True),
        "inputs": Option("an image file, a folder of images (searched recursively) or a glob", required=True),
        "output": Option("a CSV file to write the predictions to"),
        "save_preprocessed": Option("a folder to save the 28x28 images the model saw"),
    },
)
CSV_COLUMNS = ("path", "label", "confidence", "top3")


@dataclass
class Prediction:
    path: str
    probabilities: np.ndarray
    classes: list[str]  # the run's class names, one per probability

    @property
    def label(self) -> str:
        return self.classes[int(self.probabilities.argmax())]

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())

    @property
    def top3(self) -> str:
        """The three likeliest classes with their probabilities, e.g. `7:0.981 1:0.012 2:0.003`."""
        likeliest = np.argsort(-self.probabilities)[:3]
        return " ".join(f"{self.classes[index]}:{self.probabilities[index]:.3f}" for index in likeliest)


def find_inputs(pattern: str) -> list[Path]:
    """A file, every image file in a folder (recursively), or the files matching a glob."""
    path = Path(pattern)
    if path.is_file():
        return [path]
    if path.is_dir():
        suffixes = set(Image.registered_extensions())
        # A broken or looping link is kept, so that it gets its own error line instead of vanishing.
        found = [
            file
            for file in path.rglob("*")
            if (file.is_file() or file.is_symlink()) and file.suffix.lower() in suffixes
        ]
    else:
        found = [Path(name) for name in glob.glob(pattern, recursive=True) if Path(name).is_file()]
    if not found:
        raise UserError(f"inputs={pattern} matches no image files: give a file, a folder of images or a glob")
    return sorted(found)


def save_digit(digit: np.ndarray, path: Path) -> None:
    """The 28x28 view the model saw, as an 8-bit grayscale PNG."""
    Image.fromarray(np.round(digit * 255).astype(np.uint8), mode="L").save(path)


def preprocess_all(paths: list[Path], save_dir: Path | None) -> tuple[list[Path], np.ndarray, list[str]]:
    """MNIST-style digits for the readable files, and one error line for each unreadable one."""
    readable, digits, errors = [], [], []
    for index, path in enumerate(paths):
        try:
            digit = to_mnist(read_image(path))
        except UserError as error:
            errors.append(f"error: {path}: {error}")
            continue
        except Exception as error:  # a bug on one odd file must not cost the other files their answers
            errors.append(f"error: {path}: could not be read ({type(error).__name__}: {first_line(error)})")
            continue
        if save_dir is not None:
            save_digit(digit, save_dir / f"{index:04d}_{path.stem}.png")
        readable.append(path)
        digits.append(digit)
    return readable, np.stack(digits) if digits else np.zeros((0, 28, 28), np.float32), errors


def predict_files(
    model_dir: Path, paths: list[Path], save_dir: Path | None = None
) -> tuple[list[Prediction], list[str]]:
    """Predictions for every readable image and the error lines for the rest."""
    classifier = load_classifier(model_dir)
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
    readable, digits, errors = preprocess_all(paths, save_dir)
    scores = probabilities(classifier, digits) if len(digits) else []
    return [Prediction(str(path), row, classifier.classes) for path, row in zip(readable, scores, strict=True)], errors


def write_csv(predictions: list[Prediction], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        writer.writerows((p.path, p.label, f"{p.confidence:.4f}", p.top3) for p in predictions)


def print_table(predictions: list[Prediction]) -> None:
    width = max([len("path"), *(len(p.path) for p in predictions)])
    print(f"{'path':<{width}}  label  confidence  top3")
    for p in predictions:
        print(f"{p.path:<{width}}  {p.label:>5}  {p.confidence:>10.4f}  {p.top3}")


def check_output(output: Path) -> None:
    """Refuse an output file that could not be written, before any image is read."""
    folder = output.parent
    if not folder.is_dir():
        raise UserError(f"output={output}: the folder {folder} does not exist: create it or choose another file")
    if output.is_dir() or not os.access(folder, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise UserError(f"output={output} cannot be written: choose a writable file")


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        if args.output:
            check_output(Path(str(args.output)))
        save_dir = args.save_preprocessed
        predictions, errors = predict_files(
            Path(str(args.model)), find_inputs(str(args.inputs)), Path(str(save_dir)) if save_dir else None
        )
    print_table(predictions)
    if args.output:
        write_csv(predictions, Path(str(args.output)))
    for line in errors:
        print(line, file=sys.stderr)
    if errors:
        sys.exit(EXIT_SOME_FAILED)


if __name__ == "__main__":
    main()
