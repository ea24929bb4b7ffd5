"""Images of one data set turned into what a model trained on another saw: channels, polarity, size.

`evaluate data=usps` on an MNIST run and every user of a run's PixelClassifier (predict, serve and
the exported models take MNIST-style 28x28 input) go through `conform`, on pixels in [0, 1]
before the run's normalization. Between identical data sets it changes nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mnist_cnn.training.datasets import DataSet

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 grayscale, as PIL's convert("L")


def to_channels(images: Tensor, channels: int) -> Tensor:
    """RGB to grayscale by luma, or grayscale repeated into RGB."""
    if channels == 1:
        return (images * images.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return images.repeat(1, channels, 1, 1)


def light_ink_on_black(images: Tensor) -> Tensor:
    """Each image as light-ink sets draw theirs: ink bright, ground black, whichever way round it came.

    An image whose border is brighter than its average is dark ink on a light ground and is
    inverted (the border is mostly ground even in tight crops such as SVHN's, which come both ways
    round); then its ground level (the border's mean) goes to 0 and its brightest ink to 1, as in
    MNIST, where a grey ground would read as faint ink everywhere.
    """
    gray = images.mean(1, keepdim=True)
    border = torch.cat((gray[..., 0, :], gray[..., -1, :], gray[..., :, 0], gray[..., :, -1]), dim=-1).mean(-1)
    dark_ink = (border > gray.mean((2, 3))).view(-1, 1, 1, 1)
    images = torch.where(dark_ink, 1 - images, images)
    ground = torch.where(dark_ink, 1 - border.view(-1, 1, 1, 1), border.view(-1, 1, 1, 1))
    peak = images.amax((1, 2, 3), keepdim=True)
    return ((images - ground) / (peak - ground).clamp(min=1e-6)).clamp(0, 1)


def rescale(images: Tensor, source: DataSet, target: DataSet) -> Tensor:
    """Scale so a character spans the share of the frame it spans in the target set, then pad or crop to its side.

    USPS's digits fill their 16x16 frame, MNIST's a 20x20 box in 28x28: a USPS digit becomes 20x20
    with 4 black pixels around it, not a 28x28 digit larger than any MNIST saw.
    """
    side = round(target.size * target.fill / source.fill)
    if side != source.size:
        images = F.interpolate(
            images, size=(side, side), mode="bilinear", align_corners=False, antialias=side < source.size
        )
    margin = target.size - side
    if margin > 0:  # only frames with a margin (fill < 1) need one: the light-ink sets, whose ground is black
        images = F.pad(images, (margin // 2, margin - margin // 2) * 2)
    elif margin < 0:
        start = -margin // 2
        images = images[..., start : start + target.size, start : start + target.size]
    return images


def conform(images: Tensor, source: DataSet, target: DataSet) -> Tensor:
    """[0, 1] images (N, C, H, W) of `source` as `target`'s model expects them: its channels, ink, scale and side.

    Every decision is taken from the two descriptions, never from the tensor, so a traced export stays exact.
    """
    if source.channels != target.channels:
        images = to_channels(images, target.channels)
    if target.ink == "light" and source.ink != "light":
        images = light_ink_on_black(images)
    return rescale(images, source, target)
