"""Hostile input: every config key with every kind of bad value, tampered run directories, images that
would exhaust memory, and files that break one at a time."""

from __future__ import annotations

import copy
import itertools
import math
import shutil
import struct
import subprocess
import sys
import zlib
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import command_env, quick_overrides
from digit_images import encoded, zero
from mnist_cnn.cli import flat_keys
from mnist_cnn.errors import UserError
from mnist_cnn.evaluate import evaluate_run
from mnist_cnn.predict import check_output, predict_files
from mnist_cnn.serve import checked_address
from mnist_cnn.training.checks import check_values, resolved
from mnist_cnn.training.config import compose_config
from mnist_cnn.wild.images import MAX_DECODED_BYTES, read_image

# Every kind of value a user (or a fuzzer) can give on the command line, as Hydra parses it.
HOSTILE_VALUES = (
    None,
    True,
    False,
    0,
    -1,
    1,
    3,
    0.5,
    1.5,
    10**30,
    math.inf,
    -math.inf,
    math.nan,
    "",
    "abc",
    [1, 2],
    {"a": 1},
)
# One composed config per combination of the groups whose nodes differ in their keys.
BASES = [
    ("model=" + model, "optim=" + optim, "scheduler=" + scheduler)
    for model, optim, scheduler in itertools.product(
        ("fast", "cnn3"), ("adam", "sgd"), ("onecycle", "cosine", "step", "none")
    )
]


def one_line_naming(message: str, key: str) -> bool:
    """The message is one line that starts with the key or a section above it (a check across keys)."""
    parts = key.split(".")
    return "\n" not in message and any(message.startswith(".".join(parts[:size])) for size in range(len(parts), 0, -1))


def with_value(config: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of plain config values with one dotted key set."""
    changed = copy.deepcopy(config)
    *parents, last = key.split(".")
    node = changed
    for part in parents:
        node = node[part]
    node[last] = value
    return changed


def test_every_key_with_every_kind_of_bad_value_is_accepted_or_refused_in_one_line(tiny_mnist):
    cases = refused = 0
    for base in BASES:
        cfg = compose_config(*quick_overrides(tiny_mnist, *base))
        config = resolved(cfg)
        for key, value in itertools.product(flat_keys(cfg), HOSTILE_VALUES):
            cases += 1
            try:
                check_values(with_value(config, key, value))
            except UserError as error:
                refused += 1
                assert one_line_naming(str(error), key), (key, value, str(error))
    assert cases >= 10_000 and refused > cases / 2, (cases, refused)


@pytest.mark.parametrize(
    "key, value",
    [
        ("data.eval_batch_size", -1),  # once trained and wrote every final figure as 0.0 with status ok
        ("data.eval_batch_size", 0),
        ("data.augment_strength.noise", math.nan),  # once trained to chance with status ok
        ("data.augment_strength.rotate", math.inf),
        ("scheduler.max_lr", 0),  # a zero peak learning rate: nothing learned, status ok
        ("data.std", 0),
        ("trainer.precision", "fast"),
    ],
)
def test_values_that_once_ended_in_a_silent_wrong_result_are_refused(key, value, tiny_mnist):
    config = resolved(compose_config(*quick_overrides(tiny_mnist)))
    with pytest.raises(UserError, match=f"^{key}="):
        check_values(with_value(config, key, value))


def test_a_saved_run_naming_other_code_is_refused_before_anything_runs(trained_run, tmp_path):
    run_dir = shutil.copytree(trained_run, tmp_path / "tampered")
    config = OmegaConf.load(run_dir / "config.yaml")
    planted = tmp_path / "planted.txt"
    config.model = {"_target_": "builtins.open", "file": str(planted), "mode": "w"}
    OmegaConf.save(config, run_dir / "config.yaml")
    for load in (lambda: evaluate_run(run_dir), lambda: predict_files(run_dir, [])):
        with pytest.raises(UserError, match="names model._target_=builtins.open: a saved run may only name classes of"):
            load()
    assert not planted.exists()


def test_a_saved_run_with_a_nested_target_or_a_bad_value_is_refused(trained_run, tmp_path):
    run_dir = shutil.copytree(trained_run, tmp_path / "tampered")
    config = OmegaConf.load(run_dir / "config.yaml")
    config.model.dropout = {"_target_": "os.system", "_args_": ["touch x"]}
    OmegaConf.save(config, run_dir / "config.yaml")
    with pytest.raises(UserError, match="names model.dropout._target_=os.system"):
        evaluate_run(run_dir)
    config.model.dropout = -3
    OmegaConf.save(config, run_dir / "config.yaml")
    with pytest.raises(UserError, match=r"is not a valid run config \(model.dropout=-3 is invalid"):
        evaluate_run(run_dir)


def png_header_only(width: int, height: int, color_type: int = 6) -> bytes:
    """A PNG whose header claims a size, with no pixel data: refused (or not) before any decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_an_image_that_would_take_more_than_the_budget_to_decode_is_refused_from_its_header():
    with pytest.raises(
        UserError, match=f"5000x5000 RGBA pixels would take 95 MB to decode, over the {MAX_DECODED_BYTES // 2**20} MB"
    ):
        read_image(png_header_only(5000, 5000))


@pytest.mark.slow
def test_the_largest_accepted_image_stays_within_the_memory_budget(tmp_path):
    """A 7000x7000 1-bit PNG is 19 KB on disk; reading and preprocessing it once cost 1.7 GB."""
    from PIL import Image, ImageDraw

    image = Image.new("1", (7000, 7000), 1)
    ImageDraw.Draw(image).ellipse((2000, 1000, 5000, 6000), outline=0, width=300)
    image.save(tmp_path / "bomb.png")
    # VmHWM is this process's own peak; ru_maxrss would carry pytest's peak across the exec.
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mnist_cnn.wild.images import read_image\n"
        "from mnist_cnn.wild.preprocess import to_mnist\n"
        "def kilobytes(field):\n"
        "    return next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith(field))\n"
        "before = kilobytes('VmRSS:')\n"
        "digit = to_mnist(read_image(Path(sys.argv[1])))\n"
        "print((kilobytes('VmHWM:') - before) / 1024, digit.shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "bomb.png")],
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    extra_mb, shape = result.stdout.split(maxsplit=1)
    assert float(extra_mb) < 100 and shape.strip() == "(28, 28)"


def test_one_bad_file_never_costs_the_others_their_answers(trained_run, tmp_path, monkeypatch):
    from mnist_cnn import predict
    from mnist_cnn.wild import reading

    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(encoded(zero()))
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    real_to_mnist = reading.to_mnist

    def breaks_on_b(gray, keep_grey):
        if breaks_on_b.calls == 1:
            breaks_on_b.calls += 1
            raise ValueError("cannot convert float NaN to integer")
        breaks_on_b.calls += 1
        return real_to_mnist(gray, keep_grey)

    breaks_on_b.calls = 0
    monkeypatch.setattr(reading, "to_mnist", breaks_on_b)
    answers, errors = predict_files(trained_run, predict.find_inputs(str(tmp_path)))
    assert [path.name for path, _ in answers] == ["a.png", "c.png"]
    assert sorted(line.split(": ")[1].rsplit("/", 1)[1] for line in errors) == ["b.png", "dangling.png", "loop.png"]
    assert any("ValueError: cannot convert float NaN to integer" in line for line in errors)


def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path):
    with pytest.raises(
        UserError, match=f"output={tmp_path}/missing/preds.csv: the folder {tmp_path}/missing does not exist"
    ):
        check_output(tmp_path / "missing" / "preds.csv")
    with pytest.raises(UserError, match="cannot be written"):
        check_output(tmp_path)
    check_output(tmp_path / "preds.csv")


def test_an_oversized_file_is_refused_unread(tmp_path, monkeypatch):
    from mnist_cnn.wild import images

    monkeypatch.setattr(images, "MAX_FILE_BYTES", 100)
    (tmp_path / "big.png").write_bytes(encoded(zero()))
    with pytest.raises(UserError, match=r"is 0 MB, over the 0 MB limit"):
        read_image(tmp_path / "big.png")


@pytest.mark.parametrize(
    "host, port, message",
    [
        ("127.0.0.1", 99999, "port=99999 is not a TCP port"),
        ("127.0.0.1", 1.5, "port=1.5 is not a TCP port"),
        ("127.0.0.1", "abc", "port=abc is not a TCP port"),
        ("127.0.0.1", True, "port=True is not a TCP port"),
        ("", 8000, "host= is not a host name"),
        ("local host", 8000, "host=local host is not a host name"),
    ],
)
def test_serve_refuses_a_bad_port_or_host(host, port, message):
    with pytest.raises(UserError, match=message):
        checked_address(host, port)
    assert checked_address("127.0.0.1", 8000) == ("127.0.0.1", 8000)


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (2, 3), (3, 3), (1, 1000), (2, 3000), (3, 700), (1000, 1), (4, 4)])
def test_tiny_and_thin_images_read_the_same_every_time_or_are_refused_in_one_line(shape):
    from mnist_cnn.wild.preprocess import to_mnist

    gray = np.ones(shape, np.float32)
    gray[: max(1, shape[0] // 2), : max(1, shape[1] // 2)] = 0  # ink in one corner
    answers = []
    for _ in range(3):
        try:
            answers.append(to_mnist(gray.copy()))
        except UserError as refused:
            answers.append(str(refused))
    if isinstance(answers[0], str):
        assert answers == [answers[0]] * 3 and "\n" not in answers[0]
    else:
        assert all(np.isfinite(answer).all() and np.array_equal(answer, answers[0]) for answer in answers)
