"""Load test of `mnist_cnn.serve` on the loopback interface: requests/s, latency and errors.

Run from the repository root: `python -m benchmarks.serve_load [--model <run dir>] [--seconds 10]`.
It starts the real command (waitress) on a free 127.0.0.1 port and, for 1, 4 and 16 clients, posts
the same photo-sized PNG for a fixed time; then it repeats 4 clients while 50 slow clients hold
sockets open with half a request each. Every loop is bounded in count and time and only ever talks
to 127.0.0.1. Without --model it trains a small run on MNIST first (one short epoch).
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from PIL import Image, ImageDraw

from benchmarks.common import DEFAULT_DATA, REPO

MAX_REQUESTS_PER_CLIENT = 2000


def photo_png() -> bytes:
    """A 1200x1600 grey photo of a hand-written 0: a realistic upload, decoded and preprocessed in full."""
    image = Image.new("L", (1200, 1600), 225)
    ImageDraw.Draw(image).ellipse((350, 300, 850, 1300), outline=30, width=70)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(image: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="digit.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def small_run(workdir: Path) -> Path:
    run_dir = workdir / "run"
    command = [
        sys.executable, "-m", "mnist_cnn.train", f"data.root={DEFAULT_DATA}", "data.download=false",
        "trainer.max_epochs=1", "+trainer.limit_train_batches=100", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    return run_dir


def start_server(model: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "mnist_cnn.serve", f"model={model}", f"port={port}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"serve did not start: {server.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.3)
    server.kill()
    raise SystemExit("serve did not answer within 120 s")


def client(url: str, body: bytes, content_type: str, until: float, latencies: list[float], errors: list[str]) -> None:
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= until:
            return
        request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
            latencies.append(time.perf_counter() - started)
        except (urllib.error.URLError, OSError) as error:
            errors.append(
                type(error).__name__ + (f" {error.code}" if isinstance(error, urllib.error.HTTPError) else "")
            )


def hold_slow_sockets(port: int, count: int) -> list[socket.socket]:
    """Connections that send half a request and then nothing, as slow or malicious clients do."""
    held = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=5)
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\nxx")
        held.append(connection)
    return held


def measure(url: str, clients: int, seconds: float, image: bytes) -> dict[str, float]:
    body, content_type = multipart(image)
    latencies: list[float] = []
    errors: list[str] = []
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client, args=(url, body, content_type, until, latencies, errors))
        for _ in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [float("nan")]
    return {
        "requests/s": len(latencies) / elapsed,
        "p50 ms": 1000 * statistics.median(ordered),
        "p99 ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "ok": len(latencies),
        "errors": len(errors),
        "error kinds": ", ".join(sorted(set(errors))) or "-",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a run directory (default: train a small one)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each load level")
    parser.add_argument("--slow-clients", type=int, default=50, help="sockets held open with half a request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        model = args.model or small_run(Path(workdir))
        port = free_port()
        server = start_server(model, port)
        url = f"http://127.0.0.1:{port}/predict"
        image = photo_png()
        rows = []
        try:
            for clients in (1, 4, 16):
                rows.append((f"{clients} clients", measure(url, clients, args.seconds, image)))
            held = hold_slow_sockets(port, args.slow_clients)
            rows.append((f"4 clients + {args.slow_clients} slow", measure(url, 4, args.seconds, image)))
            for connection in held:
                connection.close()
        finally:
            server.terminate()
            server.wait(30)
    print(f"POST /predict with a {len(image) // 1024} KB 1200x1600 PNG, {args.seconds:.0f} s per level, 127.0.0.1")
    print(f"{'load':<22} {'requests/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'ok':>6} {'errors':>7}  error kinds")
    for name, row in rows:
        print(
            f"{name:<22} {row['requests/s']:>10.1f} {row['p50 ms']:>8.0f} {row['p99 ms']:>8.0f} "
            f"{row['ok']:>6} {row['errors']:>7}  {row['error kinds']}"
        )


if __name__ == "__main__":
    main()
