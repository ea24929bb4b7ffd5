"""The architectures: the seed study's four CNN families and a small BatchNorm CNN for fast CPU runs.

The seed families regularize with dropout only (its rate is `model.dropout`); `fast` uses
BatchNorm, which lets a 30k-parameter net reach 99% in an epoch or two. Every model takes its
input channels, image side and class count from the data (the recipe passes the data set's), and
sizes its classifier from the side left after its poolings: 28x28 MNIST, 32x32 RGB SVHN, 16x16 USPS.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from mnist_cnn.training.choices import STEMS


def conv_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """A 3x3 same-size convolution followed by ReLU."""
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True)]


def classifier(in_features: int, hidden: int, dropout: float, num_classes: int) -> list[nn.Module]:
    """Flatten, dropout, a hidden layer, dropout, the logits."""
    return [
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    ]


def pooled(side: int, times: int) -> int:
    """The image side after `times` 2x2 max-poolings (each floors an odd side)."""
    return side // 2**times


class DigitNet(nn.Module):
    """Base class: a plain feed-forward stack of layers from images to class logits."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)


class Primitive(DigitNet):
    """One conv block and a linear classifier: the seed study's baseline."""

    def __init__(self, dropout: float = 0.25, in_channels: int = 1, image_size: int = 28, num_classes: int = 10):
        super().__init__(
            [
                *conv_relu(in_channels, 32),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Dropout(dropout),
                nn.Linear(32 * pooled(image_size, 1) ** 2, num_classes),
            ]
        )


class CNN1(DigitNet):
    """Two conv blocks (32, 64 channels) and a 128-unit hidden layer."""

    def __init__(self, dropout: float = 0.5, in_channels: int = 1, image_size: int = 28, num_classes: int = 10):
        super().__init__(
            [
                *conv_relu(in_channels, 32),
                nn.MaxPool2d(2),
                *conv_relu(32, 64),
                nn.MaxPool2d(2),
                *classifier(64 * pooled(image_size, 2) ** 2, 128, dropout, num_classes),
            ]
        )


class CNN2(DigitNet):
    """Two blocks of two convolutions each (32, 64 channels) and a 256-unit hidden layer."""

    def __init__(self, dropout: float = 0.5, in_channels: int = 1, image_size: int = 28, num_classes: int = 10):
        super().__init__(
            [
                *conv_relu(in_channels, 32),
                *conv_relu(32, 32),
                nn.MaxPool2d(2),
                *conv_relu(32, 64),
                *conv_relu(64, 64),
                nn.MaxPool2d(2),
                *classifier(64 * pooled(image_size, 2) ** 2, 256, dropout, num_classes),
            ]
        )


class CNN3(DigitNet):
    """The deepest: three pooled blocks, five convolutions (32 to 128 channels), 256 hidden units."""

    def __init__(self, dropout: float = 0.5, in_channels: int = 1, image_size: int = 28, num_classes: int = 10):
        super().__init__(
            [
                *conv_relu(in_channels, 32),
                nn.MaxPool2d(2),
                *conv_relu(32, 32),
                *conv_relu(32, 64),
                nn.MaxPool2d(2),
                *conv_relu(64, 64),
                *conv_relu(64, 128),
                nn.MaxPool2d(2),
                *classifier(128 * pooled(image_size, 3) ** 2, 256, dropout, num_classes),
            ]
        )


def conv_bn_relu(in_channels: int, out_channels: int, pool: bool = False) -> list[nn.Module]:
    """A 3x3 convolution without bias (BatchNorm supplies it), optionally 2x2 max-pooling, BatchNorm, ReLU.

    Pooling straight after the convolution lets BatchNorm and ReLU, forward and backward, run on
    a quarter of the pixels (measured by benchmarks/overhead.py).
    """
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        *([nn.MaxPool2d(2)] if pool else []),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def pooled_block(in_channels: int, out_channels: int, convs: int) -> list[nn.Module]:
    """`convs` conv-BatchNorm-ReLU layers, the first changing the channel count, the last pooling."""
    layers = []
    for index in range(convs):
        layers += conv_bn_relu(in_channels if index == 0 else out_channels, out_channels, pool=index == convs - 1)
    return layers


def first_block(stem: str, in_channels: int, out_channels: int) -> list[nn.Module]:
    """The first block, the only one at full resolution: about half of a CPU training step.

    `pool`: a 3x3 convolution, then max-pooling, BatchNorm and ReLU, like the later blocks.
    `strided`: a 5x5 convolution with stride 2 straight to half the side (14x14 for MNIST), BatchNorm
    and ReLU; it skips the full-resolution activations, at the same one-epoch accuracy
    (experiment=fast; its speed-up is measured by benchmarks/overhead.py).
    """
    if stem == "pool":
        return pooled_block(in_channels, out_channels, 1)
    if stem == "strided":
        return [
            nn.Conv2d(in_channels, out_channels, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    raise ValueError(f"stem={stem!r}: allowed values are {', '.join(STEMS)}")


class FastCNN(DigitNet):
    """A small BatchNorm CNN (16-32-64 channels) that reaches 99% test accuracy in one epoch on a CPU.

    `width` sets the first block's channels (the next two double them). `convs_per_block` deepens
    the second and third blocks only: at 14x14 and 7x7 an extra convolution costs a quarter and a
    sixteenth of what it would at full resolution. Width 24 with two convolutions per block, plus
    augmentation and more epochs, is the `experiment=best` recipe. `stem` picks the first block.
    """

    def __init__(
        self,
        dropout: float = 0.1,
        width: int = 16,
        convs_per_block: int = 1,
        stem: str = "pool",
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
    ):
        # the strided stem's 5x5 convolution (padding 2, stride 2) rounds an odd side up, max-pooling down
        stem_side = (image_size + 1) // 2 if stem == "strided" else pooled(image_size, 1)
        super().__init__(
            [
                *first_block(stem, in_channels, width),
                *pooled_block(width, 2 * width, convs_per_block),
                *pooled_block(2 * width, 4 * width, convs_per_block),
                nn.Flatten(),
                nn.Dropout(dropout),
                nn.Linear(4 * width * pooled(stem_side, 2) ** 2, num_classes),
            ]
        )


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, as reported in metrics.json."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def flops_per_image(model: nn.Module, image_shape: tuple[int, ...]) -> int:
    """Floating-point operations of one forward pass on one image, counted by torch (for the run's summary line)."""
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *image_shape))
    model.train(was_training)
    return counter.get_total_flops()
