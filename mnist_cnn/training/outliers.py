"""Non-digits made from a training batch's own digits, for outlier exposure (Hendrycks et al., 2019).

A classifier of ten digits has no answer for "none of these", so it learns to be sure of anything
it is shown. Trained also on images that are no digit, with every class equally likely as their
target, it learns to spread its probability over what it does not know, and `predict` says
"not sure" of it. The non-digits are made from digits, so they cost nothing to get and stay close
to what the model must still read: two digits of different classes drawn over each other, a
digit whose quarters are moved round, and a digit mirrored or turned a quarter (not 0, 1 or 8,
which stay digits; mirrored and turned digits look like letters). The scribbles and printed
letters that benchmarks/real_world.py measures the rejection on are never trained on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

OUTLIER = -1  # the label of a non-digit in a training batch
SYMMETRIC = (0, 1, 8)  # digits still digits when mirrored or turned a quarter
OUTLIER_WEIGHT = 0.5  # the weight of the non-digits' loss beside the digits' cross-entropy (Hendrycks et al.'s)


def quarters_moved_round(images: Tensor, generator: torch.Generator) -> Tensor:
    """Each image's four quarters moved one, two or three places round (never back where they were)."""
    n, channels, height, width = images.shape
    half_h, half_w = height // 2, width // 2
    cropped = images[:, :, : 2 * half_h, : 2 * half_w]
    quarters = cropped.reshape(n, channels, 2, half_h, 2, half_w).permute(0, 2, 4, 1, 3, 5).reshape(n, 4, -1)
    steps = torch.randint(1, 4, (n, 1), device=images.device, generator=generator)
    order = (torch.arange(4, device=images.device) + steps) % 4
    moved = quarters.gather(1, order[:, :, None].expand_as(quarters))
    moved = moved.reshape(n, 2, 2, channels, half_h, half_w).permute(0, 3, 1, 4, 2, 5)
    result = images.clone()
    result[:, :, : 2 * half_h, : 2 * half_w] = moved.reshape(n, channels, 2 * half_h, 2 * half_w)
    return result


def with_outliers(images: Tensor, labels: Tensor, share: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """The batch with `share` of its size added as non-digits (label OUTLIER), made from its own digits.

    Images are normalized, but normalization keeps the order of brightness, so the brighter of two
    pixels is still the ink where two digits are drawn over each other.
    """
    count = round(share * len(labels))
    if count == 0:
        return images, labels
    rows = torch.randperm(len(labels), device=images.device, generator=generator)[:count]
    digits, classes = images.index_select(0, rows), labels.index_select(0, rows)
    partners = torch.roll(torch.arange(count, device=images.device), 1)
    kind = torch.arange(count, device=images.device) % 4
    asymmetric = ~torch.isin(classes, torch.tensor(SYMMETRIC, device=classes.device))
    made = quarters_moved_round(digits, generator)  # kind 1, and any digit another kind would leave a digit
    for chosen, non_digit in (
        ((kind == 0) & (classes != classes.index_select(0, partners)), torch.maximum(digits, digits[partners])),
        ((kind == 2) & asymmetric, digits.flip(-1)),
        ((kind == 3) & asymmetric, digits.rot90(1, (-2, -1)) if digits.shape[-1] == digits.shape[-2] else made),
    ):
        made = torch.where(chosen[:, None, None, None], non_digit, made)
    return torch.cat([images, made]), torch.cat([labels, labels.new_full((count,), OUTLIER)])


def digit_and_outlier_losses(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per image: cross-entropy on the digits (0 on non-digits), and on the non-digits how far their
    probabilities are from every class equally likely (KL divergence: 0 there, and 0 on digits).

    Computed on the whole batch, not indexed by a mask, so no training step waits on the device.
    """
    known = labels >= 0
    digit = F.cross_entropy(logits, labels.clamp(min=0), reduction="none") * known
    uniform = (-F.log_softmax(logits, dim=1).mean(dim=1) - math.log(logits.shape[1])) * ~known
    return digit, uniform


def exposure_loss(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The batch's loss: the digits' mean cross-entropy plus OUTLIER_WEIGHT times the non-digits' mean
    divergence from uniform; and, for the epoch's figures, the digits' mean cross-entropy and their count."""
    digit_losses, outlier_losses = digit_and_outlier_losses(logits, labels)
    digits = (labels >= 0).sum().to(logits.dtype)
    digit_loss = digit_losses.sum() / digits.clamp(min=1)
    outlier_loss = outlier_losses.sum() / (len(labels) - digits).clamp(min=1)
    return digit_loss + OUTLIER_WEIGHT * outlier_loss, digit_loss, digits
