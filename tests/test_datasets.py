"""Every data set option, on small files in its real format: shapes, classes and labels, upright EMNIST,
training on each, cross-data-set evaluation, and bad input refused with one line."""

from __future__ import annotations

import bz2
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets
from data_files import learnable, make_data_root, write_idx, write_split
from omegaconf import OmegaConf
from PIL import Image
from scipy.io import loadmat

from conftest import quick_overrides, run_command, train_in_process
from mnist_cnn.errors import EXIT_USER_ERROR, UserError
from mnist_cnn.evaluate import evaluate_run
from mnist_cnn.predict import predict_files
from mnist_cnn.report import find_runs, generality
from mnist_cnn.serve import create_app
from mnist_cnn.training.checks import check_config
from mnist_cnn.training.config import compose_config
from mnist_cnn.training.data import load_split
from mnist_cnn.training.datasets import CATALOGUE, describe
from mnist_cnn.training.hparams import flat_hparams

# (data.name, data.split or extra) -> (channels, side, classes)
OPTIONS = {
    ("mnist", None): (1, 28, 10),
    ("fashion_mnist", None): (1, 28, 10),
    ("kmnist", None): (1, 28, 10),
    ("qmnist", None): (1, 28, 10),
    ("emnist", "balanced"): (1, 28, 47),
    ("emnist", "byclass"): (1, 28, 62),
    ("emnist", "bymerge"): (1, 28, 47),
    ("emnist", "letters"): (1, 28, 26),
    ("emnist", "digits"): (1, 28, 10),
    ("emnist", "mnist"): (1, 28, 10),
    ("svhn", None): (3, 32, 10),
    ("svhn", "extra"): (3, 32, 10),
    ("usps", None): (1, 16, 10),
}


def data_settings(name: str, variant: str | None) -> dict:
    """The `data` keys that pick an option: EMNIST's split, SVHN's extra images."""
    if variant == "extra":
        return {"extra": True}
    return {"split": variant} if variant else {}


def overrides_for(name: str, variant: str | None, root: Path) -> list[str]:
    extra = [f"data.{key}={str(value).lower()}" for key, value in data_settings(name, variant).items()]
    return quick_overrides(root, f"data={name}", *extra)


@pytest.mark.parametrize("name, variant", OPTIONS)
def test_each_option_reads_back_the_images_and_labels_written_in_its_format(name, variant, tmp_path):
    settings = data_settings(name, variant)
    root = make_data_root(tmp_path, name, train=120, test=40, **settings)
    spec = describe({"name": name, **settings})
    channels, side, classes = OPTIONS[name, variant]
    assert spec.model_inputs() == {"in_channels": channels, "image_size": side, "num_classes": classes}
    assert len(set(spec.classes)) == classes
    for split, count, seed in (("train", 120, 0), ("test", 40, 1)):
        images, labels = load_split(spec, root, split)
        parts = [learnable(count, seed, spec)]
        if split == "train" and variant == "extra":  # the extra images join the training set
            parts.append(learnable(count, 2, spec))
        written, written_labels = (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert images.shape == (len(written), channels, side, side)
        assert 0 <= labels.min() and labels.max() < classes
        assert torch.equal(images, torch.from_numpy(written)) and torch.equal(labels, torch.from_numpy(written_labels))


def test_the_small_files_keep_each_formats_own_conventions(tmp_path):
    """What the readers undo is really in the files: SVHN's 10 for the digit 0, USPS's labels 1-10 and pixels in
    [-1, 1], EMNIST letters' labels 1-26."""
    svhn = loadmat(make_data_root(tmp_path / "svhn", "svhn", train=200, test=20) / "test_32x32.mat")
    assert set(svhn["y"].ravel()) == set(range(1, 11)) and svhn["X"].shape == (32, 32, 3, 20)
    with bz2.open(make_data_root(tmp_path / "usps", "usps", train=20, test=200) / "usps.t.bz2", "rt") as file:
        rows = [line.split() for line in file]
    values = [float(pair.split(":")[1]) for row in rows for pair in row[1:]]
    assert {int(row[0]) for row in rows} == set(range(1, 11)) and min(values) == -1 and max(values) == 1
    letters = make_data_root(tmp_path / "emnist", "emnist", train=20, test=200, split="letters")
    stored = (letters / "EMNIST" / "raw" / "emnist-letters-test-labels-idx1-ubyte").read_bytes()[8:]
    assert set(stored) == set(range(1, 27))


def seven() -> np.ndarray:
    """An upright 7: a bar along the top, a stroke down the right. Its transpose is a different shape."""
    image = np.zeros((28, 28), np.uint8)
    image[4:7, 6:22] = 255
    image[7:24, 18:21] = 255
    return image


def test_emnist_comes_out_upright_like_mnist(tmp_path):
    """EMNIST's files hold every image transposed; MNIST's hold them upright. Both must read as the same 7."""
    raw = tmp_path / "EMNIST" / "raw"
    for part in ("train", "test"):
        write_idx(raw / f"emnist-digits-{part}-images-idx3-ubyte", np.stack([seven().T] * 3))
        write_idx(raw / f"emnist-digits-{part}-labels-idx1-ubyte", np.full(3, 7, np.uint8))
        write_idx(tmp_path / "MNIST" / "raw" / f"{'t10k' if part == 'test' else part}-images-idx3-ubyte", seven()[None])
        write_idx(
            tmp_path / "MNIST" / "raw" / f"{'t10k' if part == 'test' else part}-labels-idx1-ubyte",
            np.full(1, 7, np.uint8),
        )
    emnist, _ = load_split(describe({"name": "emnist", "split": "digits"}), tmp_path, "test")
    mnist, _ = load_split(CATALOGUE["mnist"], tmp_path, "test")
    assert torch.equal(emnist[0, 0], torch.from_numpy(seven())) and torch.equal(emnist[0], mnist[0])
    assert emnist[0, 0, 5, 10] == 255 and emnist[0, 0, 10, 5] == 0  # the bar is along the top, not down the left


@pytest.fixture(scope="module")
def svhn_run(tmp_path_factory) -> Path:
    """Two epochs on tiny SVHN-format data: 32x32 RGB, per-channel statistics measured on the training images."""
    root = make_data_root(tmp_path_factory.mktemp("svhn_data"), "svhn")
    return train_in_process(tmp_path_factory.mktemp("svhn") / "run", *overrides_for("svhn", None, root))


def test_a_model_trains_on_32x32_rgb_and_records_what_it_was_trained_on(svhn_run):
    metrics = json.loads((svhn_run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["test/acc"] > 0.5  # ten classes: chance is 0.1
    assert list(metrics["test/acc_per_class"]) == list("0123456789")
    saved = OmegaConf.load(svhn_run / "config.yaml")
    assert saved.data.name == "svhn" and len(saved.data.mean) == len(saved.data.std) == 3
    assert all(0 < mean < 1 for mean in saved.data.mean) and all(0 < std < 1 for std in saved.data.std)
    assert json.loads((svhn_run / "classes.json").read_text()) == {"classes": list("0123456789")}


def test_a_missing_data_set_is_fetched_by_torchvisions_downloader_before_its_statistics_are_measured(
    tmp_path, monkeypatch
):
    spec, calls = CATALOGUE["usps"], []

    def fake_usps(root: str, train: bool, download: bool) -> None:
        """Stands in for torchvision.datasets.USPS, which would fetch the file into root and verify its checksum."""
        calls.append((root, train, download))
        split, count = ("train", 300) if train else ("test", 100)
        write_split(spec, Path(root), split, *learnable(count, len(calls), spec))

    monkeypatch.setattr(torchvision.datasets, "USPS", fake_usps)
    root = tmp_path / "data"
    run = train_in_process(tmp_path / "run", *overrides_for("usps", None, root), "data.download=true")
    assert calls == [(str(root), True, True), (str(root), False, True)]
    assert json.loads((run / "metrics.json").read_text())["status"] == "ok"
    assert isinstance(OmegaConf.load(run / "config.yaml").data.mean, float)


def test_an_mnist_model_is_evaluated_on_a_32x32_rgb_set_beside_its_own_result(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    own = evaluate_run(run)
    root = make_data_root(tmp_path / "data", "svhn", train=50, test=60)
    result = evaluate_run(run, str(root), {"name": "svhn"})
    assert result["data"] == "svhn" and result["input"] == "3x32x32 as 1x28x28" and 0 <= result["test/acc"] <= 1
    assert json.loads((run / "eval_svhn.json").read_text()) == result
    assert json.loads((run / "eval.json").read_text()) == own  # untouched by the other data set


def test_report_puts_the_runs_results_on_every_data_set_side_by_side(trained_run, svhn_run, tmp_path):
    runs = tmp_path / "runs"
    mnist = shutil.copytree(trained_run, runs / "mnist_run")
    shutil.copytree(svhn_run, runs / "svhn_run")
    usps = evaluate_run(mnist, str(make_data_root(tmp_path / "data", "usps", train=30, test=40)), {"name": "usps"})
    own = {run: json.loads((runs / run / "metrics.json").read_text())["test/acc"] for run in ("mnist_run", "svhn_run")}
    assert generality(find_runs(str(runs))).splitlines() == [
        "| run | trained on | mnist | svhn | usps |",
        "| --- | --- | --- | --- | --- |",
        f"| mnist_run | mnist | **{100 * own['mnist_run']:.2f}%** |  | {100 * usps['test/acc']:.2f}% |",
        f"| svhn_run | svhn |  | **{100 * own['svhn_run']:.2f}%** |  |",
    ]


def test_hparams_name_the_data_set(tiny_mnist):
    params = flat_hparams(compose_config("data=emnist", "data.split=letters"), {"data": "emnist", "model": "fast"})
    assert params["data"] == "emnist" and params["data.name"] == "emnist" and params["data.split"] == "letters"


def test_a_model_is_refused_on_a_data_set_with_other_classes(trained_run, tmp_path):
    root = make_data_root(tmp_path, "emnist", train=30, test=30, split="letters")
    with pytest.raises(UserError, match="^data=emnist_letters's classes a, b, c, d, e, ... are not among the run's 10"):
        evaluate_run(trained_run, str(root), {"name": "emnist", "split": "letters"})
    assert not (trained_run / "eval_emnist_letters.json").exists()


def test_an_unknown_split_lists_the_allowed_ones(tiny_mnist):
    with pytest.raises(UserError) as refused:
        check_config(compose_config(*quick_overrides(tiny_mnist, "data=emnist", "data.split=cyrillic")))
    assert str(refused.value) == (
        "data.split='cyrillic' is invalid: should be 'balanced', 'byclass', 'bymerge', 'digits', 'letters' or 'mnist'"
    )


@pytest.mark.parametrize("name, missing", [("usps", "usps.t.bz2"), ("svhn", "train_32x32.mat")])
def test_a_missing_file_is_named_with_the_fix(name, missing, tmp_path):
    root = make_data_root(tmp_path, name, train=20, test=20)
    (root / missing).unlink()
    with pytest.raises(UserError) as refused:
        check_config(compose_config(*quick_overrides(root, f"data={name}")))
    assert str(refused.value) == (
        f"data.root={root}: {root / missing} is missing and data.download=false: set data.download=true, or point "
        f"data.root at a folder holding torchvision's {describe({'name': name}).downloader} files"
    )


@pytest.mark.parametrize("name, damaged", [("usps", "usps.bz2"), ("svhn", "test_32x32.mat")])
def test_a_damaged_file_is_named_with_the_fix_when_read(name, damaged, tmp_path):
    root = make_data_root(tmp_path, name, train=20, test=20)
    path = root / damaged
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    check_config(compose_config(*quick_overrides(root, f"data={name}", "data.val_size=5")))  # the header is intact
    with pytest.raises(UserError) as refused:
        load_split(describe({"name": name}), root, "train" if damaged == "usps.bz2" else "test")
    message = str(refused.value)
    assert message.startswith(f"{path} is truncated or corrupt (") and "\n" not in message
    assert message.endswith(f"delete {path} and run again with data.download=true to fetch a fresh copy")


@pytest.mark.slow
@pytest.mark.parametrize("name, variant", [option for option in OPTIONS if option != ("svhn", None)])
def test_a_tiny_model_trains_well_above_chance_on_each_option(name, variant, tmp_path):
    settings = data_settings(name, variant)
    root = make_data_root(tmp_path / "data", name, train=1200, test=300, **settings)
    run = train_in_process(tmp_path / "run", *overrides_for(name, variant, root), "trainer.max_epochs=4")
    metrics = json.loads((run / "metrics.json").read_text())
    classes = OPTIONS[name, variant][2]
    assert metrics["test/acc"] > min(0.5, 10 / classes), metrics["test/acc"]
    assert len(metrics["test/acc_per_class"]) == classes


@pytest.mark.slow
def test_a_letters_run_answers_with_letters_in_its_metrics_predictions_and_page(tmp_path):
    root = make_data_root(tmp_path / "data", "emnist", train=1200, test=300, split="letters")
    run = train_in_process(tmp_path / "run", *overrides_for("emnist", "letters", root), "trainer.max_epochs=4")
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics["test/acc_per_class"]) == list("abcdefghijklmnopqrstuvwxyz")
    image = tmp_path / "letter.png"
    Image.fromarray(learnable(1, 3, describe({"name": "emnist", "split": "letters"}))[0][0, 0]).save(image)
    ((_, read),), errors = predict_files(run, [image])
    (letter,) = read.digits
    assert errors == [] and letter.label in letter.classes == list("abcdefghijklmnopqrstuvwxyz")
    client = create_app(run).test_client()
    answer = client.post("/predict", data={"image": (image.open("rb"), "letter.png")}).get_json()
    assert answer["label"] == letter.label and answer["classes"] == letter.classes
    refusal = "numbers=true needs a model of the ten digits 0-9: this one's classes are a, b, c, d, e, ..."
    with pytest.raises(UserError, match=refusal):
        predict_files(run, [image], numbers=True)
    refused = client.post("/predict", data={"image": (image.open("rb"), "letter.png"), "numbers": "true"})
    assert refused.status_code == 400 and refused.get_json() == {"error": refusal}


@pytest.mark.slow
def test_the_evaluate_command_takes_another_data_set_as_train_does(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    root = make_data_root(tmp_path / "data", "emnist", train=30, test=50, split="digits")
    result = run_command(
        "mnist_cnn.evaluate", f"run_dir={run}", "data=emnist", "data.split=digits", f"data.root={root}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    saved = json.loads((run / "eval_emnist_digits.json").read_text())
    assert result.stdout.startswith(f"emnist_digits: test/acc {saved['test/acc']:.4f}")


@pytest.mark.slow
def test_the_command_refuses_an_unknown_split_with_one_line(tiny_mnist, tmp_path):
    result = run_command(
        "mnist_cnn.train", *quick_overrides(tiny_mnist, "data=emnist", "data.split=cyrillic"), cwd=tmp_path
    )
    assert result.returncode == EXIT_USER_ERROR
    assert result.stderr.strip().splitlines() == [
        "error: data.split='cyrillic' is invalid: should be 'balanced', 'byclass', 'bymerge', 'digits', 'letters' or "
        "'mnist'"
    ]
