"""Our Lightning training loop against a plain PyTorch loop: same model, data, batch size, optimizer.

Run from the repository root: `python -m benchmarks.overhead [--batches N] [data.root=...]`; for
32x32 RGB inputs, `python -m benchmarks.overhead data=svhn` with SVHN's files, or
`python -m benchmarks.overhead data=svhn --synthetic 30000` with random images of SVHN's shape in
their place (images/s does not depend on what the images show).
Both loops train a fresh copy of the configured network on the same resident batches for the same
number of steps; the Lightning side runs exactly as `mnist_cnn.train` builds it (loggers, checkpoint
and progress callbacks, per-step metrics), with validation switched off so only training is timed.
A third loop, Lightning with none of our loggers, checkpoints or callbacks, shows how much of the
gap is Lightning's own per-step cost.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from benchmarks.common import DEFAULT_DATA, stopwatch
from mnist_cnn.rundir import RunDir
from mnist_cnn.training.config import compose_config
from mnist_cnn.training.data import ImageDataModule
from mnist_cnn.training.module import DigitClassifier
from mnist_cnn.training.recipe import build_datamodule, build_trainer


class TrainingTimer(pl.Callback):
    """Times the training batches only, leaving out Trainer setup and teardown."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.started


def timed_fit(trainer: pl.Trainer, datamodule: ImageDataModule, module: DigitClassifier, batches: int) -> float:
    """Training images/s of one `fit`, timed by a callback around the epoch's batches."""
    timer = TrainingTimer()
    trainer.callbacks.append(timer)
    trainer.fit(module, datamodule=datamodule)
    return batches * datamodule.batch_size / timer.seconds


def lightning_images_per_second(cfg, datamodule: ImageDataModule, module: DigitClassifier, batches: int) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        return timed_fit(build_trainer(cfg, RunDir(Path(run_dir))), datamodule, module, batches)


def bare_lightning_images_per_second(cfg, datamodule: ImageDataModule, module: DigitClassifier, batches: int) -> float:
    """Lightning's own floor: the same module with no loggers, checkpoints or callbacks of ours."""
    trainer = pl.Trainer(
        accelerator=cfg.trainer.accelerator,
        max_epochs=1,
        limit_train_batches=batches,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    return timed_fit(trainer, datamodule, module, batches)


def plain_images_per_second(datamodule: ImageDataModule, module: DigitClassifier, batches: int) -> float:
    """The loop everyone writes by hand, with the module's own optimizer and schedule."""
    network = module.network
    optimizer = instantiate(module.hparams.optim)(network.parameters())
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=module.hparams.optim["lr"], total_steps=batches)
    loader = datamodule.train_dataloader()
    network.train()
    with stopwatch() as timing:
        for step, (images, labels) in enumerate(loader):
            if step == batches:
                break
            loss = F.cross_entropy(module(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return batches * datamodule.batch_size / timing["seconds"]


def load_synthetic(datamodule: ImageDataModule, images: int) -> None:
    """Random uint8 images of the data set's shape handed to the data module as if read from its files.

    They then take the real path: statistics measured, validation split carved, normalized, resident.
    """
    spec, generator = datamodule.spec, torch.Generator().manual_seed(0)
    pixels = torch.randint(
        0, 256, (images, spec.channels, spec.size, spec.size), generator=generator, dtype=torch.uint8
    )
    labels = torch.randint(0, len(spec.classes), (images,), generator=generator)
    datamodule.loaded = {"train": (pixels, labels), "test": (pixels[: images // 6], labels[: images // 6])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400, help="training steps timed on each side")
    parser.add_argument(
        "--rounds",
        type=int,
        default=7,
        help="alternating rounds of each loop; the best is reported (3 swung 4-14%% here)",
    )
    parser.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="IMAGES",
        help="train on this many random images of the data set's shape instead of its files (0: its files)",
    )
    parser.add_argument("overrides", nargs="*", help="config overrides, as for mnist_cnn.train")
    args = parser.parse_args()
    cfg = compose_config(
        f"data.root={DEFAULT_DATA}",
        "data.download=false",
        "trainer=cpu",
        "trainer.max_epochs=1",
        f"+trainer.limit_train_batches={args.batches}",
        "+trainer.limit_val_batches=0",
        *args.overrides,
    )
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = build_datamodule(cfg)
    if args.synthetic:
        load_synthetic(datamodule, args.synthetic)
    datamodule.setup()
    template = DigitClassifier.from_config(cfg)
    plain, ours, bare = [], [], []
    for _ in range(args.rounds):
        # Alternate the loops so that load from other processes hits them alike; keep the best.
        plain.append(plain_images_per_second(datamodule, copy.deepcopy(template), args.batches))
        ours.append(lightning_images_per_second(cfg, datamodule, copy.deepcopy(template), args.batches))
        bare.append(bare_lightning_images_per_second(cfg, datamodule, copy.deepcopy(template), args.batches))
    plain, ours, bare = max(plain), max(ours), max(bare)
    shape = "x".join(str(side) for side in datamodule.splits["train"][0].shape[1:])
    source = f"{args.synthetic} random images" if args.synthetic else "its files"
    print(
        f"data={datamodule.spec.label} ({shape}, {source}) model={cfg.model._target_.rsplit('.', 1)[-1]} "
        f"batch_size={cfg.data.batch_size} steps={args.batches} best of {args.rounds} rounds, "
        f"torch threads={torch.get_num_threads()}"
    )
    print(f"plain PyTorch loop   {plain:10.0f} images/s")
    print(f"our Lightning loop   {ours:10.0f} images/s")
    print(
        f"bare Lightning loop  {bare:10.0f} images/s  (no loggers, checkpoints or callbacks: Lightning's own "
        f"cost, {(1 - bare / plain) * 100:+.1f}% slower)"
    )
    print(f"Lightning / plain    {ours / plain:10.3f}  ({(1 - ours / plain) * 100:+.1f}% slower; goal: at most 10%)")


if __name__ == "__main__":
    main()
