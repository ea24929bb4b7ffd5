"""End to end in a real headless Chromium: draw a digit on the page's canvas and read the prediction."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium) for the page test",
    ),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(trained_run):
    """`python -m mnist_cnn.serve` as a user starts it, on a free local port."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_cnn.serve", f"model={trained_run}", f"port={port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the server did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)


def draw_ring(page, centre_x: float, centre_y: float, width: float = 120, height: float = 180) -> None:
    """A tall ellipse drawn with the mouse in one stroke, like a person drawing a 0."""
    points = [
        (centre_x + width / 2 * math.sin(t / 20 * math.pi), centre_y - height / 2 * math.cos(t / 20 * math.pi))
        for t in range(41)
    ]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y)
    page.mouse.up()


def draw_zero(page) -> None:
    """A 0 in the middle of the pad."""
    box = page.locator("#pad").bounding_box()
    draw_ring(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_drawing_on_the_canvas_shows_a_prediction(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server)
            draw_zero(page)
            page.wait_for_function("document.getElementById('digit').textContent !== '?'", timeout=60_000)
            digit = int(page.text_content("#digit"))
            shown = [float(page.text_content(f"#bar-{d} small")) for d in range(10)]
            seen = page.get_attribute("#seen", "src")
            error = page.text_content("#error")
        finally:
            browser.close()
    assert error == ""
    assert abs(sum(shown) - 1) < 0.01
    assert shown[digit] == max(shown)
    assert seen.startswith("data:image/png;base64,")


def test_the_numbers_switch_widens_the_pad_and_reads_each_digit(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server)
            page.check("#numbers")
            assert page.eval_on_selector("#pad", "pad => pad.width") == 840
            box = page.locator("#pad").bounding_box()
            for left in (0.2, 0.5, 0.8):
                draw_ring(page, box["x"] + left * box["width"], box["y"] + box["height"] / 2, width=100, height=160)
            page.wait_for_function("document.querySelectorAll('#number-digits figure').length === 3", timeout=60_000)
            number = page.text_content("#digit")
            captions = page.locator("#number-digits figcaption").all_text_contents()
            single_hidden = page.eval_on_selector("#single", "section => section.hidden")
            error = page.text_content("#error")
        finally:
            browser.close()
    assert error == "" and single_hidden
    assert len(number) == 3 and number.isdigit()
    assert [caption.split()[0].rstrip("?") for caption in captions] == list(number)
