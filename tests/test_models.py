"""Each architecture's output shape, parameter count and dropout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mnist_cnn.training.models import CNN1, CNN2, CNN3, FastCNN, Primitive, count_parameters

ARCHITECTURES = [Primitive, CNN1, CNN2, CNN3, FastCNN]


def conv(cin: int, cout: int, bias: bool = True) -> int:
    return cin * cout * 9 + (cout if bias else 0)


def linear(fin: int, fout: int) -> int:
    return fin * fout + fout


EXPECTED_PARAMETERS = {
    Primitive: conv(1, 32) + linear(32 * 14 * 14, 10),
    CNN1: conv(1, 32) + conv(32, 64) + linear(64 * 7 * 7, 128) + linear(128, 10),
    CNN2: conv(1, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64) + linear(64 * 7 * 7, 256) + linear(256, 10),
    CNN3: conv(1, 32)
    + conv(32, 32)
    + conv(32, 64)
    + conv(64, 64)
    + conv(64, 128)
    + linear(128 * 3 * 3, 256)
    + linear(256, 10),
    FastCNN: conv(1, 16, False) + 32 + conv(16, 32, False) + 64 + conv(32, 64, False) + 128 + linear(64 * 3 * 3, 10),
}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_output_shape_and_parameter_count(architecture):
    model = architecture()
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)
    assert count_parameters(model) == EXPECTED_PARAMETERS[architecture]


def test_fast_model_is_about_30k_parameters_and_cnn3_is_deepest():
    assert 25_000 <= count_parameters(FastCNN()) <= 35_000
    conv_layers = {arch: sum(isinstance(m, nn.Conv2d) for m in arch().modules()) for arch in ARCHITECTURES[:4]}
    assert max(conv_layers, key=conv_layers.get) is CNN3


def test_fast_model_deepens_only_its_smaller_blocks():
    deep, shallow = FastCNN(width=24, convs_per_block=2), FastCNN(width=24)
    assert deep(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert count_parameters(deep) - count_parameters(shallow) == conv(48, 48, False) + 96 + conv(96, 96, False) + 192
    convs = [m for m in deep.modules() if isinstance(m, nn.Conv2d)]
    assert [c.in_channels for c in convs] == [1, 24, 48, 48, 96]


def test_strided_stem_reaches_the_second_block_at_14x14_without_full_resolution_activations():
    strided, pooled = FastCNN(stem="strided"), FastCNN()
    first_conv = strided.layers[0]
    assert (first_conv.kernel_size, first_conv.stride) == ((5, 5), (2, 2))
    assert strided.layers[:3](torch.randn(2, 1, 28, 28)).shape == (2, 16, 14, 14)
    assert strided(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert count_parameters(strided) - count_parameters(pooled) == 16 * (25 - 9)
    with pytest.raises(ValueError, match="stem='conv'"):
        FastCNN(stem="conv")


@pytest.mark.parametrize(
    "architecture, options", [(architecture, {}) for architecture in ARCHITECTURES] + [(FastCNN, {"stem": "strided"})]
)
@pytest.mark.parametrize("channels, side, classes", [(1, 28, 10), (3, 32, 10), (1, 16, 10), (1, 28, 47)])
def test_every_model_fits_every_data_shape_and_learns_from_it(architecture, options, channels, side, classes):
    """MNIST, SVHN's 32x32 RGB, USPS's 16x16 and EMNIST balanced's 47 classes: sized from the data, not by hand."""
    torch.manual_seed(0)
    model = architecture(in_channels=channels, image_size=side, num_classes=classes, **options)
    images, labels = torch.randn(8, channels, side, side), torch.arange(8) % classes
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert model(images).shape == (8, classes)
    assert losses[-1] < losses[0]


def test_the_classifier_is_sized_from_the_side_left_after_pooling():
    assert FastCNN(image_size=32).layers[-1].in_features == 64 * 4 * 4
    assert FastCNN(image_size=16, stem="strided").layers[-1].in_features == 64 * 2 * 2
    assert CNN3(in_channels=3, image_size=32).layers[0].in_channels == 3
    linear = [layer for layer in CNN3(image_size=16).layers if isinstance(layer, nn.Linear)]
    assert [layer.in_features for layer in linear] == [128 * 2 * 2, 256]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_dropout_rate_is_configurable(architecture):
    rates = {m.p for m in architecture(dropout=0.7).modules() if isinstance(m, nn.Dropout)}
    assert rates == {0.7}
