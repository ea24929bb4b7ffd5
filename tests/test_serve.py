"""The web app's JSON API on good and bad uploads (Flask test client)."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
import pytest
from PIL import Image

from digit_images import encoded, on_uneven_paper, written, zero
from mnist_cnn.serve import MAX_UPLOAD_BYTES, create_app


@pytest.fixture(scope="module")
def client(trained_run):
    return create_app(trained_run).test_client()


def upload(client, data: bytes, field: str = "image", **form: str):
    return client.post(
        "/predict", data={field: (io.BytesIO(data), "digit.png"), **form}, content_type="multipart/form-data"
    )


def test_page_has_a_drawing_canvas_and_an_upload(client):
    page = client.get("/")
    assert page.status_code == 200
    assert b"<canvas" in page.data and b'type="file"' in page.data
    assert b'id="numbers" type="checkbox"' in page.data and b'id="tta" type="checkbox"' in page.data


def test_predict_returns_digit_probabilities_and_the_28x28_view(client):
    response = upload(client, encoded(on_uneven_paper(zero()), "JPEG"))
    assert response.status_code == 200
    result = response.get_json()
    assert len(result["probabilities"]) == 10 and abs(sum(result["probabilities"]) - 1) < 1e-4
    assert result["classes"] == list("0123456789")
    assert result["label"] == result["classes"][int(np.argmax(result["probabilities"]))]
    assert result["confidence"] == max(result["probabilities"])
    assert result["verdict"] in ("sure", "not sure") and result["number"] == result["label"]
    likeliest = [result["classes"][index] for index in np.argsort(result["probabilities"])[::-1][:3]]
    assert [choice["label"] for choice in result["top3"]] == likeliest
    assert result["digits"] == [{key: result[key] for key in result["digits"][0]}]  # the one digit, also on top
    assert view_size(result["preprocessed"]) == (28, 28)


def view_size(data_url: str) -> tuple[int, int]:
    header, data = data_url.split(",", 1)
    assert header == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(data))).size


def test_numbers_answer_the_number_with_each_digits_box_and_view(client):
    response = upload(client, encoded(on_uneven_paper(written("2024")), "JPEG"), numbers="true", tta="true")
    assert response.status_code == 200
    result = response.get_json()
    assert len(result["number"]) == 4 and "label" not in result
    assert result["number"] == "".join(digit["label"] for digit in result["digits"])
    lefts = [digit["box"]["left"] for digit in result["digits"]]
    assert lefts == sorted(lefts)
    assert all(view_size(digit["preprocessed"]) == (28, 28) for digit in result["digits"])


def test_a_blank_drawing_is_no_digit_found(client):
    result = upload(client, encoded(Image.new("L", (60, 60), 255))).get_json()
    assert result == {"verdict": "no digit found", "number": "", "digits": [], "classes": list("0123456789")}


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"hello, I am text", 400, "not an image"),
        (b"", 400, "empty"),
        (encoded(zero())[:200], 400, "truncated"),
        (encoded(Image.new("1", (8000, 8000))), 400, "too large to decode"),
        (b"0" * (MAX_UPLOAD_BYTES + 1), 413, "larger than"),
    ],
    ids=["not_image", "empty", "truncated", "bomb", "over_limit"],
)
def test_bad_uploads_get_4xx_with_a_message_and_the_app_keeps_serving(client, data, status, message):
    response = upload(client, data)
    assert response.status_code == status
    assert message in response.get_json()["error"]
    assert upload(client, encoded(zero())).status_code == 200


def test_missing_field_is_a_400(client):
    response = upload(client, encoded(zero()), field="photo")
    assert response.status_code == 400 and "'image'" in response.get_json()["error"]


def test_predictions_beyond_the_concurrency_bound_get_503_and_the_app_recovers(trained_run, monkeypatch):
    from mnist_cnn import serve
    from mnist_cnn.wild import reading

    monkeypatch.setattr(serve, "PREDICTION_SLOTS", 1)
    monkeypatch.setattr(serve, "BUSY_WAIT", 0.01)
    busy_client = create_app(trained_run).test_client()
    slot_taken = threading.Event()
    release = threading.Event()
    real_to_mnist = reading.to_mnist

    def slow_to_mnist(gray, keep_grey):
        slot_taken.set()
        release.wait(30)
        return real_to_mnist(gray, keep_grey)

    monkeypatch.setattr(reading, "to_mnist", slow_to_mnist)
    first = threading.Thread(target=upload, args=(busy_client, encoded(zero())))
    first.start()
    assert slot_taken.wait(30)
    refused = upload(busy_client, encoded(zero()))
    release.set()
    first.join(30)
    assert refused.status_code == 503 and refused.get_json()["error"].startswith("busy: 1 predictions are running")
    assert upload(busy_client, encoded(zero())).status_code == 200
