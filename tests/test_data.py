"""The tensor-resident datamodule: shapes, normalization, seeded per-epoch orders, DDP shards."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import quick_overrides, run_command
from mnist_cnn.training.data import ImageDataModule, ShardedPermutation, channel_statistics, normalize


def rows_of(permutation: ShardedPermutation) -> list[int]:
    return torch.cat(permutation.batches()).tolist()


def test_splits_have_the_model_input_shape_and_integer_labels(tiny_mnist):
    datamodule = ImageDataModule(str(tiny_mnist), download=False, val_size=100, batch_size=32)
    datamodule.setup()
    for split, size in (("train", 500), ("val", 100), ("test", 200)):
        images, labels = datamodule.splits[split]
        assert images.shape == (size, 1, 28, 28) and images.dtype == torch.float32
        assert labels.shape == (size,) and labels.dtype == torch.int64
    batches = list(datamodule.train_dataloader())
    assert len(batches) == len(datamodule.train_dataloader()) == 16
    assert sum(len(labels) for _, labels in batches) == 500
    assert all(images.shape[1:] == (1, 28, 28) for images, _ in batches)


def test_normalize_standardizes_with_the_given_statistics():
    pixels = torch.randint(0, 256, (50, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    scaled = pixels.float() / 255
    normalized = normalize(pixels, scaled.mean().item(), scaled.std().item())
    assert normalized.shape == (50, 1, 28, 28)
    assert normalized.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert normalized.std().item() == pytest.approx(1.0, abs=1e-4)


def test_mnist_normalizes_with_the_same_arithmetic_as_before_other_data_sets_existed():
    """MNIST's results stay what they were: float, /255, -mean, /std with Python floats, as mnist_cnn always did."""
    pixels = torch.randint(0, 256, (50, 28, 28), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    before = pixels.float().div_(255.0).sub_(0.1307).div_(0.3081).unsqueeze(1).contiguous()
    assert torch.equal(normalize(pixels[:, None], 0.1307, 0.3081), before)


def test_rgb_images_are_standardized_per_channel():
    pixels = torch.randint(0, 256, (40, 3, 32, 32), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    pixels[:, 2] //= 4  # a darker blue channel: one mean for all three would leave it off centre
    mean, std = channel_statistics(pixels)
    assert len(mean) == len(std) == 3 and mean[2] < mean[0]
    normalized = normalize(pixels, mean, std)
    assert normalized.mean((0, 2, 3)).tolist() == pytest.approx([0, 0, 0], abs=1e-3)
    assert normalized.std((0, 2, 3)).tolist() == pytest.approx([1, 1, 1], abs=1e-3)


def test_real_mnist_training_split_is_normalized_to_mean_0_std_1(real_mnist):
    datamodule = ImageDataModule(str(real_mnist), download=False)
    datamodule.setup()
    images, _ = datamodule.splits["train"]
    assert images.mean().item() == pytest.approx(0.0, abs=0.01)
    assert images.std().item() == pytest.approx(1.0, abs=0.01)


def test_order_differs_per_epoch_and_repeats_per_seed():
    permutation = ShardedPermutation(200, 16, shuffle=True, seed=3)
    first = rows_of(permutation)
    permutation.set_epoch(1)
    second = rows_of(permutation)
    assert sorted(first) == sorted(second) == list(range(200)) and first != second
    assert rows_of(ShardedPermutation(200, 16, shuffle=True, seed=3)) == first
    assert rows_of(ShardedPermutation(200, 16, shuffle=True, seed=4)) != first
    assert rows_of(ShardedPermutation(200, 16, shuffle=False, seed=3)) == list(range(200))


@pytest.mark.parametrize("num_rows", [200, 203])
def test_two_ranks_get_disjoint_covering_shards_with_equal_batch_counts(num_rows):
    ranks = [ShardedPermutation(num_rows, 16, shuffle=True, seed=7, rank=rank, world_size=2) for rank in (0, 1)]
    for rank in ranks:
        rank.set_epoch(2)
    shards = [rows_of(rank) for rank in ranks]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(num_rows))
    assert len(ranks[0].batches()) == len(ranks[1].batches()) == len(ranks[0])
    assert max(len(batch) for rank in ranks for batch in rank.batches()) <= 16


@pytest.mark.slow
@pytest.mark.parametrize(
    "optimizer, status, epochs", [("optim.lr=0.003", "ok", 2), ("optim=sgd optim.lr=1e20", "diverged", 1)]
)
def test_training_with_simulated_ddp_reports_from_the_spawned_workers(optimizer, status, epochs, tiny_mnist, tmp_path):
    overrides = quick_overrides(tiny_mnist, "trainer=ddp_sim", "logger=csv", *optimizer.split())
    result = run_command("mnist_cnn.train", *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # status and epochs are counted in the spawned workers, where the training happened
    assert metrics["status"] == status and metrics["epochs"] == epochs and 0.0 <= metrics["test/acc"] <= 1.0
    assert list((run_dir / "checkpoints").glob("*.ckpt"))
