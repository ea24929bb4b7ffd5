"""The judge: how likely a part of a written number is to be one whole digit, not two touching ones or a piece.

A digit classifier is trained on whole digits only, so it has no answer for "two digits" or "part
of one": it reads a 1 crossing a 6 as a 4, or a 6 without its loop as a 5, confidently. Dividing a
number into digits (mnist_cnn.wild.numbers) therefore asks this second, small network as well. It is
the same for every run, trained once on numbers composed from MNIST's training digits (never its
test digits) by mnist_cnn.wild.judge_training, and shipped with the package as judge.pt.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnist_cnn.errors import UserError, first_line
from mnist_cnn.training.models import FastCNN

JUDGE_FILE = Path(__file__).with_name("judge.pt")
JUDGE_WIDTH = 24  # FastCNN's first block: 53k parameters (width 16, 24k, read fewer numbers right; see the README)


def network() -> nn.Module:
    """The judge's network: one logit, positive for one whole digit; its input is a 28x28 view in [0, 1]."""
    return FastCNN(width=JUDGE_WIDTH, num_classes=1)


@functools.cache
def judge(path: Path = JUDGE_FILE) -> nn.Module:
    """The trained judge, loaded once per process."""
    if not path.is_file():
        raise UserError(
            f"{path} is missing: reinstall mnist_cnn, or rebuild it with python -m mnist_cnn.wild.judge_training"
        )
    net = network()
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:  # torch's many ways to refuse a file: unpickling, zip, missing or misshapen keys
        raise UserError(
            f"{path} holds no judge's weights ({first_line(error)}): reinstall mnist_cnn, or rebuild it with "
            "python -m mnist_cnn.wild.judge_training"
        ) from error
    return net.eval()


@torch.no_grad()
def log_whole(views: np.ndarray) -> np.ndarray:
    """(N, 28, 28) views in [0, 1] -> (N,) log-probabilities that each is one whole digit."""
    pixels = torch.from_numpy(np.ascontiguousarray(views, dtype=np.float32)).unsqueeze(1)
    return F.logsigmoid(judge()(pixels).squeeze(1)).numpy()
