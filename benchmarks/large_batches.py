"""Large batches on a CPU: glibc's default allocator against one that keeps freed buffers.

Run from the repository root: `python -m benchmarks.large_batches [--model cnn3] [--batch-size 512]`.
Activations past glibc's mmap limit (32 MB) are handed back to the kernel when freed and fault in
again on the next step. This times training steps at one batch size and evaluation at batches of
250 and 1000, each in a fresh process (the allocator reads its settings at start), with the default
allocator and with `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=4294967296`. Random images: only
the shapes matter here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import torch
import torch.nn.functional as F

from benchmarks.common import REPO, stopwatch
from mnist_cnn.training.config import compose_config
from mnist_cnn.training.module import build_network
from mnist_cnn.training.scoring import evaluate

KEEP_FREED_BUFFERS = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "4294967296"}
STEPS, EVAL_IMAGES = 15, 10_000


def train_steps(
    network: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor, steps: int
) -> None:
    for _ in range(steps):
        loss = F.cross_entropy(network(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def measure(model: str, batch_size: int) -> dict[str, float]:
    """Images/s of training steps at `batch_size` and of evaluation at 250 and 1000, in this process."""
    cfg = compose_config(f"model={model}")
    network = build_network(cfg.model, cfg.speed.channels_last)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01)
    images = torch.randn(max(batch_size, EVAL_IMAGES), 1, 28, 28)
    labels = torch.randint(0, 10, (len(images),))
    batch, batch_labels = images[:batch_size].contiguous(memory_format=torch.channels_last), labels[:batch_size]
    train_steps(network, optimizer, batch, batch_labels, steps=3)  # oneDNN picks its kernels on first use
    with stopwatch() as timing:
        train_steps(network, optimizer, batch, batch_labels, STEPS)
    figures = {f"train, batch {batch_size}": STEPS * batch_size / timing["seconds"]}
    for eval_batch in (250, 1000):
        evaluate(network, images[:eval_batch], labels[:eval_batch], eval_batch)
        with stopwatch() as timing:
            evaluate(network, images[:EVAL_IMAGES], labels[:EVAL_IMAGES], eval_batch)
        figures[f"evaluate, batch {eval_batch}"] = EVAL_IMAGES / timing["seconds"]
    return figures


def measure_in_fresh_process(model: str, batch_size: int, extra_env: dict[str, str]) -> dict[str, float]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.large_batches",
        "--model",
        model,
        "--batch-size",
        str(batch_size),
        "--child",
    ]
    result = subprocess.run(
        command, cwd=REPO, env={**os.environ, **extra_env}, check=True, capture_output=True, text=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn3", help="model config to train (conf/model/)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.model, args.batch_size)))
        return
    default = measure_in_fresh_process(args.model, args.batch_size, {})
    kept = measure_in_fresh_process(args.model, args.batch_size, KEEP_FREED_BUFFERS)
    print(
        f"model={args.model} torch threads={torch.get_num_threads()}  images/s: default allocator -> keeping "
        "freed buffers"
    )
    for name in default:
        print(f"{name:22} {default[name]:9.0f} -> {kept[name]:9.0f}  ({kept[name] / default[name]:.2f}x)")


if __name__ == "__main__":
    main()
