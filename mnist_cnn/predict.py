"""Read digits in real images: `python -m mnist_cnn.predict model=<run dir> inputs=<file, folder or glob>`.

Each image is preprocessed into an MNIST-style 28x28 character (mnist_cnn.wild.preprocess), or with
numbers=true split into its digits left to right (mnist_cnn.wild.numbers), and classified by the
run's best checkpoint, which answers with its own class names (a letters model's `k`, not 10).
Every answer carries a verdict: sure, not sure (below the run's calibrated threshold, see
mnist_cnn.calibrate, or min_confidence) or no digit found. A file that cannot be read gets a
one-line error and the others are still predicted; the exit status is then 1 (EXIT_SOME_FAILED).
"""

from __future__ import annotations

import csv
import glob
import sys
from pathlib import Path

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    import numpy as np
    from PIL import Image

    from mnist_cnn.cli import Command, Option, parse_arguments, user_errors, writable_file
    from mnist_cnn.errors import EXIT_SOME_FAILED, UserError, first_line
    from mnist_cnn.wild.calibration import run_threshold
    from mnist_cnn.wild.classifier import load_classifier
    from mnist_cnn.wild.images import read_image
    from mnist_cnn.wild.reading import NOT_SURE_BELOW, Answer, check_digit_model, read

COMMAND = Command(
    "predict",
    "Read the character (or with numbers=true the number) in each image: prints a table, optionally writes CSV rows.",
    {
        "model": Option("a run directory, or a sweep's selected_model folder", required=True),
        "inputs": Option("an image file, a folder of images (searched recursively) or a glob", required=True),
        "output": Option("a CSV file to write the predictions to"),
        "save_preprocessed": Option("a folder to save the 28x28 images the model saw"),
        "numbers": Option(
            "read each image as a number: its digits left to right, touching ones cut apart", default=False
        ),
        "tta": Option(
            "test-time augmentation: average over the digit shifted a pixel and turned 10 degrees", default=False
        ),
        "min_confidence": Option(
            f"answers below this confidence are 'not sure' (default: the run's calibrated threshold, else "
            f"{NOT_SURE_BELOW})"
        ),
    },
)
LABEL_COLUMNS = ("path", "label", "confidence", "top3", "verdict")
NUMBER_COLUMNS = ("path", "number", "confidences", "boxes", "verdict")


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


def label_row(path: Path, answer: Answer) -> dict[str, str]:
    """One image's single-character answer; empty label fields when nothing was found."""
    row = {"path": str(path), "label": "", "confidence": "", "top3": "", "verdict": answer.verdict}
    if answer.digits:
        digit = answer.digits[0]
        top3 = " ".join(f"{label}:{probability:.3f}" for label, probability in digit.top3())
        row.update(label=digit.label, confidence=f"{digit.confidence:.4f}", top3=top3)
    return row


def number_row(path: Path, answer: Answer) -> dict[str, str]:
    """One image's number, each digit's confidence and box (left,top,right,bottom), left to right."""
    return {
        "path": str(path),
        "number": answer.number,
        "confidences": " ".join(f"{digit.confidence:.3f}" for digit in answer.digits),
        "boxes": " ".join(f"{d.box.left},{d.box.top},{d.box.right},{d.box.bottom}" for d in answer.digits if d.box),
        "verdict": answer.verdict,
    }


def predict_files(
    model_dir: Path,
    paths: list[Path],
    numbers: bool = False,
    tta: bool = False,
    threshold: float | None = None,
    save_dir: Path | None = None,
) -> tuple[list[tuple[Path, Answer]], list[str]]:
    """An answer per readable image (saving the 28x28 views if asked) and an error line per unreadable one.

    `threshold`: below it an answer is "not sure"; None takes the run's calibrated one.
    """
    classifier = load_classifier(model_dir)
    if numbers:
        check_digit_model(classifier.classes, "numbers=true")
    threshold = run_threshold(model_dir) if threshold is None else threshold
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
    answers, errors = [], []
    for index, path in enumerate(paths):
        try:
            answer = read(classifier, read_image(path), numbers, tta, threshold)
        except UserError as error:
            errors.append(f"error: {path}: {error}")
            continue
        except Exception as error:  # a bug on one odd file must not cost the other files their answers
            errors.append(f"error: {path}: could not be read ({type(error).__name__}: {first_line(error)})")
            continue
        for place, digit in enumerate(answer.digits):
            if save_dir is not None:
                save_digit(digit.view, save_dir / f"{index:04d}_{path.stem}{f'_{place}' if numbers else ''}.png")
        answers.append((path, answer))
    return answers, errors


def write_csv(rows: list[dict[str, str]], columns: tuple[str, ...], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def print_table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> None:
    widths = {column: max([len(column), *(len(row[column]) for row in rows)]) for column in columns}
    for row in [dict(zip(columns, columns, strict=True)), *rows]:
        print("  ".join(row[column].ljust(widths[column]) for column in columns).rstrip())


def check_output(output: Path) -> None:
    """Refuse an output file that could not be written, before any image is read."""
    folder = output.parent
    if not folder.is_dir():
        raise UserError(f"output={output}: the folder {folder} does not exist: create it or choose another file")
    if not writable_file(output):
        raise UserError(f"output={output} cannot be written: choose a writable file")


def checked_confidence(value: object) -> float | None:
    """min_confidence= as given: None (the run's own threshold), or a number from 0 to 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1):
        raise UserError(f"min_confidence={value} is invalid: give a number from 0 to 1")
    return value


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        if args.output:
            check_output(Path(str(args.output)))
        threshold = checked_confidence(args.min_confidence)
        save_dir = Path(str(args.save_preprocessed)) if args.save_preprocessed else None
        answers, errors = predict_files(
            Path(str(args.model)), find_inputs(str(args.inputs)), args.numbers, args.tta, threshold, save_dir
        )
    columns, make_row = (NUMBER_COLUMNS, number_row) if args.numbers else (LABEL_COLUMNS, label_row)
    rows = [make_row(path, answer) for path, answer in answers]
    print_table(rows, columns)
    if args.output:
        write_csv(rows, columns, Path(str(args.output)))
    for line in errors:
        print(line, file=sys.stderr)
    if errors:
        sys.exit(EXIT_SOME_FAILED)


if __name__ == "__main__":
    main()
