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


@pytest.fixture
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server)
            yield page
        finally:
            browser.close()


def wait_for_answer(page) -> None:
    page.wait_for_function("document.getElementById('digit').textContent !== '?'", timeout=60_000)


def answer_area(page) -> dict:
    """Where the answer's parts sit, to check that nothing jumps."""
    return {part: page.locator(part).bounding_box() for part in ("#bars", "#seen", "#pad")}


def shown_answer(page) -> dict:
    return {
        "digit": page.text_content("#digit"),
        "bars": [float(page.text_content(f"#bar-{d} small")) for d in range(10)],
        "seen": page.get_attribute("#seen", "src"),
        "seen_visible": page.eval_on_selector("#seen", "image => getComputedStyle(image).visibility") == "visible",
        "error": page.text_content("#error"),
    }


def ink_on_pad(page) -> int:
    """How many of the pad's pixels are not black."""
    return page.evaluate(
        """() => {
        const pad = document.getElementById("pad");
        const pixels = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
        let ink = 0;
        for (let i = 0; i < pixels.length; i += 4) ink += pixels[i] + pixels[i + 1] + pixels[i + 2] > 60;
        return ink;
    }"""
    )


def test_drawing_on_the_canvas_shows_a_prediction_and_clear_resets_everything(page):
    before = shown_answer(page)
    layout = answer_area(page)
    assert before == {"digit": "?", "bars": [0.0] * 10, "seen": None, "seen_visible": False, "error": ""}
    draw_zero(page)
    wait_for_answer(page)
    shown = shown_answer(page)
    assert shown["error"] == "" and abs(sum(shown["bars"]) - 1) < 0.01
    assert shown["bars"][int(shown["digit"])] == max(shown["bars"])
    assert shown["seen"].startswith("data:image/png;base64,") and shown["seen_visible"]
    assert answer_area(page) == layout
    page.click("#clear")
    assert shown_answer(page) == before and ink_on_pad(page) == 0


def test_a_failed_upload_replaces_the_answer_and_a_photo_is_shown_on_the_pad(page, tmp_path):
    from PIL import Image, ImageDraw

    photo = Image.new("L", (300, 400), 235)  # dark ink on light paper, like a phone photo
    ImageDraw.Draw(photo).ellipse((90, 80, 210, 320), outline=20, width=22)
    photo.save(tmp_path / "zero.png")
    (tmp_path / "notes.png").write_text("not an image")
    layout = answer_area(page)

    page.set_input_files("#upload", str(tmp_path / "zero.png"))
    wait_for_answer(page)
    assert ink_on_pad(page) > 10_000  # the photo is on the pad
    assert shown_answer(page)["seen_visible"]

    page.set_input_files("#upload", str(tmp_path / "notes.png"))
    page.wait_for_function("document.getElementById('error').textContent !== ''", timeout=60_000)
    after_error = shown_answer(page)
    assert after_error["error"].startswith("the upload: not an image")
    assert after_error["digit"] == "?" and after_error["bars"] == [0.0] * 10 and not after_error["seen_visible"]
    assert answer_area(page) == layout


def test_the_numbers_switch_widens_the_pad_and_reads_each_digit(page):
    page.set_viewport_size({"width": 1400, "height": 900})
    page.check("#numbers")
    assert page.eval_on_selector("#pad", "pad => pad.width") == 840
    box = page.locator("#pad").bounding_box()
    for left in (0.2, 0.5, 0.8):
        draw_ring(page, box["x"] + left * box["width"], box["y"] + box["height"] / 2, width=100, height=160)
    page.wait_for_function("document.querySelectorAll('#number-digits figure').length === 3", timeout=60_000)
    number = page.text_content("#digit")
    captions = page.locator("#number-digits figcaption").all_text_contents()
    assert page.text_content("#error") == "" and page.eval_on_selector("#single", "section => section.hidden")
    assert len(number) == 3 and number.isdigit()
    assert [caption.split()[0].rstrip("?") for caption in captions] == list(number)
