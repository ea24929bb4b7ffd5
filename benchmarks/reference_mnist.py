"""A reference written after pytorch/examples' mnist/main.py: its Net, Adadelta (lr 1.0), StepLR (gamma 0.7),
batch 64, torchvision's MNIST + ToTensor + Normalize DataLoader, a test pass after every epoch.

Like pytorch/examples on a CPU, it does not shuffle the training set: that script turns shuffling on
only with an accelerator (`--shuffle` does too). It leaves out the example's progress print every
10 batches.

`python -m benchmarks.reference_mnist ROOT EPOCHS [--shuffle]` prints one line per epoch:
`epoch <n> test_acc <fraction>`, flushed, so a caller can time when 99% is reached.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


class Net(nn.Module):
    """pytorch/examples' mnist Net: two convolutions, max-pooling, dropout, two linear layers."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.relu(self.fc1(torch.flatten(self.dropout1(x), 1)))
        return F.log_softmax(self.fc2(self.dropout2(x)), dim=1)


def test_accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(dim=1) == labels).sum().item()
    return correct / len(loader.dataset)


def main(root: str, epochs: int, shuffle: bool) -> None:
    torch.manual_seed(1)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_loader = DataLoader(datasets.MNIST(root, train=True, transform=transform), batch_size=64, shuffle=shuffle)
    test_loader = DataLoader(datasets.MNIST(root, train=False, transform=transform), batch_size=1000)
    model = Net()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    for epoch in range(1, epochs + 1):
        model.train()
        for images, labels in train_loader:
            optimizer.zero_grad()
            F.nll_loss(model(images), labels).backward()
            optimizer.step()
        scheduler.step()
        print(f"epoch {epoch} test_acc {test_accuracy(model, test_loader):.4f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="MNIST root in torchvision's layout")
    parser.add_argument("epochs", type=int)
    parser.add_argument(
        "--shuffle", action="store_true", help="shuffle the training set, as pytorch/examples does on a GPU"
    )
    args = parser.parse_args()
    main(args.root, args.epochs, args.shuffle)
