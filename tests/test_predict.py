"""predict on real photos and on every kind of bad or unusual image file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_command
from digit_images import encoded, on_uneven_paper, written, zero
from mnist_cnn.errors import EXIT_SOME_FAILED, EXIT_USER_ERROR
from mnist_cnn.predict import main
from mnist_cnn.wild.images import MAX_PIXELS, read_image
from mnist_cnn.wild.reading import NOT_SURE_BELOW

REAL_SAMPLES = (
    "desyrani-phone-photos/custom_digits/7.jpg",
    "scholich-pen-crops/my_digits/7.png",
    "7eraflops-app-drawn/my_digits/7.png",
)


def read_predictions(path: Path) -> list[dict]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def check_rows(rows: list[dict]) -> None:
    for row in rows:
        assert 0 <= int(row["label"]) <= 9 and 0 <= float(row["confidence"]) <= 1
        top3 = [pair.split(":") for pair in row["top3"].split()]
        assert len(top3) == 3 and top3[0][0] == row["label"]
        assert row["verdict"] == ("sure" if float(row["confidence"]) >= NOT_SURE_BELOW else "not sure")


@pytest.mark.slow
def test_predict_real_images_writes_csv_and_the_28x28_views(trained_run, real_world_digits, tmp_path):
    for sample in REAL_SAMPLES:
        assert (real_world_digits / sample).is_file(), sample
    pattern = str(real_world_digits / "*" / "**" / "7.*")  # the five sources with one photo per digit
    result = run_command(
        "mnist_cnn.predict",
        f"model={trained_run}",
        f"inputs={pattern}",
        "output=preds.csv",
        "save_preprocessed=seen",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_predictions(tmp_path / "preds.csv")
    assert {str(real_world_digits / sample) for sample in REAL_SAMPLES} <= {row["path"] for row in rows}
    check_rows(rows)
    views = sorted((tmp_path / "seen").glob("*.png"))
    assert len(views) == len(rows)
    assert all(Image.open(view).size == (28, 28) for view in views)
    assert "label  confidence  top3" in result.stdout and "verdict" in result.stdout


def odd_but_valid_images(folder: Path) -> list[str]:
    """Files predict must read: 16-bit, RGBA with transparency, palette, animated GIF."""
    digit = on_uneven_paper(zero())
    samples = np.asarray(digit, dtype=np.uint16) * 257
    Image.fromarray(samples).save(folder / "sixteen_bit.png")
    rgba = zero().convert("RGBA")
    rgba.putalpha(zero())  # white strokes on a fully transparent canvas
    rgba.save(folder / "transparent.png")
    digit.convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    frames = [digit.convert("P"), Image.new("P", digit.size, 0)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return ["sixteen_bit.png", "transparent.png", "palette.png", "animated.gif"]


def bad_images(folder: Path) -> list[str]:
    """Files predict must refuse: not an image, empty, truncated, a decompression bomb."""
    (folder / "not_an_image.png").write_text("hello, I am text")
    (folder / "empty.png").write_bytes(b"")
    whole = encoded(on_uneven_paper(zero()))
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    side = int(MAX_PIXELS**0.5) + 100
    Image.new("1", (side, side), 0).save(folder / "bomb.png")
    return ["not_an_image.png", "empty.png", "truncated.png", "bomb.png"]


@pytest.mark.slow
def test_bad_files_get_one_line_each_and_the_rest_are_still_predicted(trained_run, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    good = odd_but_valid_images(images)
    bad = bad_images(images)
    result = run_command(
        "mnist_cnn.predict", f"model={trained_run}", f"inputs={images}", "output=preds.csv", cwd=tmp_path
    )
    assert result.returncode == EXIT_SOME_FAILED
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert sorted(Path(line.split(": ")[1]).name for line in error_lines) == sorted(bad)
    predicted = {Path(row["path"]).name for row in read_predictions(tmp_path / "preds.csv")}
    assert predicted == set(good)


def test_odd_formats_are_read_with_mnist_contrast(tmp_path):
    """16-bit keeps its range (not clipped white), transparency is flattened so the strokes stay visible."""
    odd_but_valid_images(tmp_path)
    sixteen = read_image(tmp_path / "sixteen_bit.png")
    eight = read_image(encoded(on_uneven_paper(zero())))
    assert np.abs(sixteen - eight).max() < 0.01
    transparent = read_image(tmp_path / "transparent.png")
    assert transparent.max() > 0.9 and np.median(transparent) < 0.1


@pytest.mark.parametrize(
    ("args", "start"), [([], "error: model= is required"), (["model=nowhere"], "error: nowhere is not a run directory")]
)
def test_usage_and_missing_model_are_one_line_errors(args, start, tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(encoded(zero()))
    with pytest.raises(SystemExit) as stopped:
        main([*args, f"inputs={tmp_path / 'x.png'}"])
    assert stopped.value.code == EXIT_USER_ERROR
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(start)


def test_a_blank_page_is_an_answer_not_a_failed_input(trained_run, tmp_path, capsys):
    on_uneven_paper(Image.new("L", (200, 150), 0)).save(tmp_path / "blank.png")
    on_uneven_paper(zero()).save(tmp_path / "zero.png")
    main([f"model={trained_run}", f"inputs={tmp_path}", f"output={tmp_path / 'preds.csv'}"])  # no SystemExit: status 0
    rows = {Path(row["path"]).name: row for row in read_predictions(tmp_path / "preds.csv")}
    assert rows["blank.png"] == {
        "path": str(tmp_path / "blank.png"),
        "label": "",
        "confidence": "",
        "top3": "",
        "verdict": "no digit found",
    }
    check_rows([rows["zero.png"]])
    assert "no digit found" in capsys.readouterr().out


def test_numbers_mode_gives_each_digits_confidence_and_box_left_to_right(trained_run, tmp_path):
    on_uneven_paper(written("2024")).save(tmp_path / "year.png")
    main(
        [
            f"model={trained_run}",
            f"inputs={tmp_path / 'year.png'}",
            f"output={tmp_path / 'n.csv'}",
            "numbers=true",
            "tta=true",
            f"save_preprocessed={tmp_path / 'seen'}",
        ]
    )
    (row,) = read_predictions(tmp_path / "n.csv")
    assert list(row) == ["path", "number", "confidences", "boxes", "verdict"]
    assert len(row["number"]) == 4 and len(row["confidences"].split()) == 4
    lefts = [int(box.split(",")[0]) for box in row["boxes"].split()]
    assert len(lefts) == 4 and lefts == sorted(lefts)
    assert sorted(path.name for path in (tmp_path / "seen").iterdir()) == [
        f"0000_year_{place}.png" for place in range(4)
    ]


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("tta=maybe", "error: tta=maybe is invalid: give true or false"),
        ("numbers=2", "error: numbers=2 is invalid: give true or false"),
        ("min_confidence=1.5", "error: min_confidence=1.5 is invalid: give a number from 0 to 1"),
        ("min_confidence=high", "error: min_confidence=high is invalid: give a number from 0 to 1"),
    ],
)
def test_bad_switches_are_one_line_errors(argument, message, trained_run, tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(encoded(zero()))
    with pytest.raises(SystemExit) as stopped:
        main([f"model={trained_run}", f"inputs={tmp_path / 'x.png'}", argument])
    assert stopped.value.code == EXIT_USER_ERROR
    assert capsys.readouterr().err.strip() == message
