"""Calibrate a run's "not sure" threshold: `python -m mnist_cnn.calibrate model=<run dir> [data.root=...]`.

The threshold is the lowest confidence above which the run's answers on hard handwriting made
from the first (tuning) half of MNIST's test set were right at least 99% of the time
(mnist_cnn.wild.calibration). It is written to <run>/calibration.json, with the expected
calibration error on the same images; predict and serve then answer "not sure" below it.
"""

from __future__ import annotations

from pathlib import Path

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    from omegaconf import OmegaConf

    from mnist_cnn.cli import Command, Option, parse_arguments, user_errors, whole_number
    from mnist_cnn.rundir import RunDir
    from mnist_cnn.wild.calibration import PER_CATEGORY, calibrate, tuning_views
    from mnist_cnn.wild.categories import CATEGORIES
    from mnist_cnn.wild.classifier import load_classifier
    from mnist_cnn.wild.reading import check_digit_model

COMMAND = Command(
    "calibrate",
    "Measure a digit model's 'not sure' threshold on hard handwriting from MNIST's tuning half into "
    "<model>/calibration.json.",
    {
        "model": Option("a run directory, or a sweep's selected_model folder", required=True),
        "data.root": Option("the folder holding MNIST/raw (default: the root the run trained with)"),
        "per_category": Option(f"tuning digits per category ({len(CATEGORIES)} categories)", default=PER_CATEGORY),
    },
)


def calibrate_run(model_dir: Path, data_root: str | None = None, per_category: int = PER_CATEGORY) -> dict:
    """Calibrate the run's threshold and store it with the run; what was stored."""
    run = RunDir(model_dir)
    classifier = load_classifier(model_dir)
    check_digit_model(classifier.classes, "calibrate")
    views, labels = tuning_views(data_root or run.read_config().data.root, per_category, classifier.keeps_grey)
    calibration = calibrate(classifier, views, labels)
    run.write_calibration(calibration)
    return calibration


def caught(share: float | None) -> str:
    """How many of the tuning mistakes were "not sure", in words; a run may have made none."""
    return "no mistakes to doubt" if share is None else f"{share:.0%} of its mistakes not sure"


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        per_category = whole_number(args, "per_category", PER_CATEGORY)
        root = OmegaConf.select(args, "data.root")
        calibration = calibrate_run(Path(str(args.model)), str(root) if root else None, per_category)
    print(
        f"{args.model}: 'not sure' below {calibration['not_sure_below']:.4f} (sure answers right "
        f">= {calibration['sure_accuracy']:.0%} on {calibration['tuning_images']} tuning images, "
        f"{calibration['sure_share']:.1%} of them sure, {caught(calibration['caught_mistakes'])}; "
        f"ECE {calibration['ece']:.4f}), "
        f"written to {RunDir(Path(str(args.model))).calibration_file}"
    )


if __name__ == "__main__":
    main()
