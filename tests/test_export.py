"""Exported ONNX and TorchScript models give the same probabilities as the PyTorch run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_cnn.errors import UserError
from mnist_cnn.export import export_run
from mnist_cnn.training.data import load_split
from mnist_cnn.training.datasets import CATALOGUE
from mnist_cnn.wild.classifier import load_classifier, probabilities


@pytest.fixture(scope="module")
def test_pixels(tiny_mnist) -> np.ndarray:
    """Test images in [0, 1], the exported models' input (normalization is baked in)."""
    images, _ = load_split(CATALOGUE["mnist"], tiny_mnist, "test")
    return (images[:64].float() / 255).numpy()


def test_onnx_runtime_agrees_with_pytorch(trained_run, test_pixels, tmp_path):
    import onnxruntime

    path = export_run(trained_run, "onnx", tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (exported,) = session.run(["probabilities"], {"pixels": test_pixels})
    expected = probabilities(load_classifier(trained_run), test_pixels[:, 0])
    assert exported.shape == (64, 10)
    assert np.abs(exported - expected).max() < 1e-4
    assert np.allclose(exported.sum(1), 1, atol=1e-5)


def test_torchscript_agrees_with_pytorch(trained_run, test_pixels, tmp_path):
    path = export_run(trained_run, "torchscript")
    assert path == trained_run / "model.torchscript.pt"
    with torch.no_grad():
        exported = torch.jit.load(str(path))(torch.from_numpy(test_pixels)).numpy()
    expected = probabilities(load_classifier(trained_run), test_pixels[:, 0])
    assert np.abs(exported - expected).max() < 1e-4


def test_unknown_format_is_refused(trained_run):
    with pytest.raises(UserError, match="format=tflite is not known"):
        export_run(trained_run, "tflite")
