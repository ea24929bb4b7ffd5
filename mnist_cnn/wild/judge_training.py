"""Build the judge (mnist_cnn.wild.judge): `python -m mnist_cnn.wild.judge_training data.root=<MNIST root>`.

The judge learns from exactly what it will be asked about: numbers are composed from MNIST's
**training** digits as the benchmark composes its own from test digits (categories.number_layers),
their ink is found and grouped as predict does, and every part a division may hold
(numbers.candidate_parts) becomes an example. The composer kept each digit on its own layer, so a
part's truth is known: one whole digit when it holds at least WHOLE of one digit's ink in its group
and at most STRAY of any other's. Each part is viewed both ways predict views digits (grey kept and
saturated), so one judge serves every run.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mnist_cnn.cli import Command, Option, parse_arguments, user_errors, whole_number, writable_file
from mnist_cnn.errors import UserError
from mnist_cnn.wild.categories import drawn, mnist_digits, number_layers, upscaled
from mnist_cnn.wild.judge import JUDGE_FILE, network
from mnist_cnn.wild.numbers import NUMBER_SIDE, candidate_parts, digit_view, groups_of
from mnist_cnn.wild.preprocess import find_ink, resized

WHOLE = 0.9  # a part holding this share of one digit's ink (in its group) ...
STRAY = 0.15  # ... and no more than this share of any other digit's is one whole digit
TRUTH_INK = 0.25  # a layer's pixel above this is its digit's ink
DIGITS_PER_NUMBER = 4
NUMBERS = 6000  # composed numbers to learn from: about 200,000 views of parts
EPOCHS = 5
HELD_OUT = 0.1  # this share of the numbers is kept out of training, to report the judge's accuracy on

COMMAND = Command(
    "wild.judge_training",
    "Train the judge of whole digits on numbers composed from MNIST's training digits, into mnist_cnn/wild/judge.pt.",
    {
        "data.root": Option("the folder holding MNIST/raw", default="data"),
        "numbers": Option("composed numbers to learn from (each gives dozens of parts)", default=NUMBERS),
        "epochs": Option("passes over the parts", default=EPOCHS),
        "workers": Option("processes that compose and divide the numbers", default=2),
        "seed": Option("draws the digits, the compositions and the initial weights", default=0),
        "out": Option("where the weights go", default=str(JUDGE_FILE)),
    },
)


def is_whole(part: np.ndarray, inside: np.ndarray) -> bool:
    """Whether a part of a group is one whole digit, judged by the digits' own ink in the group (one mask each)."""
    held = (inside & part).sum((1, 2)) / np.maximum(inside.sum((1, 2)), 1)
    best = int(held.argmax())
    return bool(held[best] >= WHOLE and np.delete(held, best).max(initial=0) <= STRAY)


def examples(digits: np.ndarray, seed: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """One number composed of the digits: (2 x parts, 28, 28) views, grey and saturated, and 1 where whole."""
    rng = np.random.default_rng(seed)
    layers = number_layers(digits, rng)
    ink = find_ink(drawn(layers, rng), NUMBER_SIDE)
    truth = np.stack([resized(upscaled(layer, 3), NUMBER_SIDE) > TRUTH_INK for layer in layers])
    views, wholes = [], []
    for group in groups_of(ink):
        inside = truth & group
        for part in candidate_parts(group, ink.width):
            whole = is_whole(part, inside)
            for keep_grey in (True, False):
                views.append(digit_view(ink, part, keep_grey))
                wholes.append(whole)
    return np.asarray(views, np.float32), np.asarray(wholes, np.float32)


def numbers_examples(images: np.ndarray, count: int, seed: int, workers: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Examples of `count` numbers of training digits drawn at random, number by number."""
    rng = np.random.default_rng(seed)
    chosen = [images[rng.integers(0, len(images), DIGITS_PER_NUMBER)] for _ in range(count)]
    seeds = [[seed, index] for index in range(count)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(examples, chosen, seeds, chunksize=8))


def stacked(per_number: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    views = np.concatenate([views for views, _ in per_number])
    return torch.from_numpy(views).unsqueeze(1), torch.from_numpy(np.concatenate([w for _, w in per_number]))


def accuracy(judge: nn.Module, views: torch.Tensor, wholes: torch.Tensor) -> float:
    judge.eval()
    with torch.no_grad():
        logits = torch.cat([judge(batch).squeeze(1) for batch in views.split(2048)])
    return float(((logits > 0) == (wholes > 0.5)).float().mean())


def train(views: torch.Tensor, wholes: torch.Tensor, epochs: int, batch_size: int = 256) -> nn.Module:
    """Fit the judge to the examples (one-cycle AdamW, each batch moved a pixel at random, as tta moves digits)."""
    judge = network()
    steps = epochs * (len(views) // batch_size)
    optimizer = torch.optim.AdamW(judge.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=max(steps, 1))
    judge.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(views)).split(batch_size)[: len(views) // batch_size]:
            shift = tuple(torch.randint(-1, 2, (2,)).tolist())
            logits = judge(torch.roll(views[batch], shift, dims=(2, 3))).squeeze(1)
            loss = F.binary_cross_entropy_with_logits(logits, wholes[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return judge.eval()


def check_writable(out: Path) -> None:
    """Refuse a destination the judge could not be saved to before spending minutes on it."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"out={out}: cannot write the judge there ({error.strerror}): give a writable path") from error
    if not writable_file(out):
        raise UserError(f"out={out}: cannot write the judge there: give a writable file path")


def build(root: str, count: int, epochs: int, workers: int, seed: int, out: Path) -> float:
    """Train the judge and save it to `out`; its accuracy on the parts of held-out numbers."""
    if count < 1 / HELD_OUT:
        raise UserError(f"numbers={count} is too few: give at least {round(1 / HELD_OUT)} (a tenth is held out)")
    check_writable(out)
    torch.manual_seed(seed)
    images, _ = mnist_digits(root, "train")
    per_number = numbers_examples(images, count, seed, workers)
    held_out = max(1, int(HELD_OUT * count))
    judge = train(*stacked(per_number[held_out:]), epochs)
    torch.save(judge.state_dict(), out)
    return accuracy(judge, *stacked(per_number[:held_out]))


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        started = time.perf_counter()
        held_out_accuracy = build(
            str(args.data.root),
            whole_number(args, "numbers", NUMBERS),
            whole_number(args, "epochs", EPOCHS),
            whole_number(args, "workers", 2),
            whole_number(args, "seed", 0, least=0),
            Path(str(args.out)),
        )
    print(
        f"judge written to {args.out} ({time.perf_counter() - started:.0f} s): {held_out_accuracy:.1%} of the parts "
        "of held-out numbers judged right"
    )


if __name__ == "__main__":
    main()
