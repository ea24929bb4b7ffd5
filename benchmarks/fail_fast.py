"""How fast a bad config value is refused, against the time `python -c "import torch"` takes.

Run from the repository root: `python -m benchmarks.fail_fast [--rounds N]`. Both sides are fresh
processes started the same way, alternated, best of N each: `python -m mnist_cnn.train optim.lr=0`
must exit with its one-line error in well under the time torch alone takes to import.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from benchmarks.common import REPO, stopwatch

REFUSED = [sys.executable, "-m", "mnist_cnn.train", "optim.lr=0"]
IMPORT_TORCH = [sys.executable, "-c", "import torch"]


def seconds(command: list[str], expected_status: int) -> float:
    """Wall time of one fresh process, checking it ended as expected."""
    with tempfile.TemporaryDirectory() as workdir, stopwatch() as timing:
        result = subprocess.run(
            command, cwd=workdir, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True
        )
    if result.returncode != expected_status:
        raise SystemExit(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return timing["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of each side; the best is reported")
    args = parser.parse_args()
    refused, torch_import = [], []
    for _ in range(args.rounds):
        refused.append(seconds(REFUSED, expected_status=2))
        torch_import.append(seconds(IMPORT_TORCH, expected_status=0))
    print(
        f"train optim.lr=0 (refused)  {min(refused):6.2f} s   (rounds: "
        f"{', '.join(f'{value:.2f}' for value in refused)})"
    )
    print(
        f'python -c "import torch"    {min(torch_import):6.2f} s   (rounds: '
        f"{', '.join(f'{value:.2f}' for value in torch_import)})"
    )
    print(f"refused / import torch      {min(refused) / min(torch_import):6.2f}x")


if __name__ == "__main__":
    main()
