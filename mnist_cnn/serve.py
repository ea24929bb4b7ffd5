"""A draw-a-digit web page and a JSON API: `python -m mnist_cnn.serve model=<run dir> [host=127.0.0.1] [port=8000]`.

`POST /predict` takes an image as the multipart field `image` (and optional form fields
`numbers=true`, `tta=true`) and answers `{"verdict", "number", "digits": [...], "classes"}`, each
digit `{"label", "confidence", "sure", "probabilities", "top3", "box", "preprocessed"}`: the run's
class name (a letters model answers `k`), the probabilities in the order of `classes`, and the 28x28
view the model saw, as a PNG data URL; a single character's fields are also at the top level. The
verdict is "sure", "not sure" (below the run's calibrated threshold) or "no digit found" (then
`digits` is empty). Bad uploads get a 4xx JSON `{"error": ...}` and the app keeps serving.
It runs on waitress with bounded worker threads, a timeout for idle and slow connections and a
bound on concurrent predictions; it listens on 127.0.0.1 unless host= says otherwise.
"""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    import waitress
    from flask import Flask, jsonify, request
    from PIL import Image
    from werkzeug.exceptions import HTTPException

    from mnist_cnn.cli import Command, Option, parse_arguments, user_errors
    from mnist_cnn.errors import UserError
    from mnist_cnn.wild.calibration import run_threshold
    from mnist_cnn.wild.classifier import load_classifier
    from mnist_cnn.wild.images import read_image
    from mnist_cnn.wild.reading import Answer, Digit, check_digit_model, read

COMMAND = Command(
    "serve",
    "A draw-a-digit web page and a JSON API (POST /predict) for one run's model.",
    {
        "model": Option("a run directory, or a sweep's selected_model folder", required=True),
        "host": Option("the address to listen on; 0.0.0.0 exposes the page to your network", default="127.0.0.1"),
        "port": Option("the TCP port", default=8000),
    },
)
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # a full-resolution phone photo fits; anything bigger is refused unread
# waitress: worker threads, and how long an idle or slow connection may hold one (seconds)
THREADS = 8
CHANNEL_TIMEOUT = 30
CONNECTION_LIMIT = 100
# At most this many predictions at once (each decodes within wild.images' memory budget); the rest
# wait up to BUSY_WAIT seconds, then get 503.
PREDICTION_SLOTS = 2
BUSY_WAIT = 10


def png_data_url(digit) -> str:
    """The 28x28 view as a PNG data URL the page can show directly."""
    buffer = io.BytesIO()
    Image.fromarray((digit * 255).round().astype("uint8"), mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def digit_json(digit: Digit, threshold: float) -> dict:
    """One character as the API answers it; `sure` when its confidence reaches the threshold."""
    box = digit.box
    return {
        "label": digit.label,
        "confidence": digit.confidence,
        "sure": digit.confidence >= threshold,
        "probabilities": [float(score) for score in digit.probabilities],
        "top3": [{"label": label, "probability": probability} for label, probability in digit.top3()],
        "box": box and {"left": box.left, "top": box.top, "right": box.right, "bottom": box.bottom},
        "preprocessed": png_data_url(digit.view),
    }


def answer_json(answer: Answer, numbers: bool, classes: list[str]) -> dict:
    """The verdict, the number, its digits and the class names; in single mode the character's fields on top too."""
    digits = [digit_json(digit, answer.threshold) for digit in answer.digits]
    single = digits[0] if digits and not numbers else {}
    return {**single, "verdict": answer.verdict, "number": answer.number, "digits": digits, "classes": classes}


def form_flag(name: str) -> bool:
    """A form field that says true (absent: false)."""
    return request.form.get(name, "false").lower() in ("true", "1", "on")


def create_app(model_dir: Path) -> Flask:
    """The app for one run's model, loaded once at start-up."""
    classifier = load_classifier(model_dir)
    threshold = run_threshold(model_dir)
    slots = threading.BoundedSemaphore(PREDICTION_SLOTS)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES

    @app.get("/")
    def page():
        return app.send_static_file("index.html")

    @app.get("/classes")
    def classes():
        """The model's class names, so the page draws one bar per class before the first answer."""
        return jsonify(classes=list(classifier.classes))

    @app.post("/predict")
    def predict():
        upload = request.files.get("image")
        if upload is None:
            return jsonify(error="no image: send it as the multipart form field 'image'"), 400
        numbers = form_flag("numbers")
        if numbers:
            try:
                check_digit_model(classifier.classes, "numbers=true")
            except UserError as error:
                return jsonify(error=str(error)), 400
        if not slots.acquire(timeout=BUSY_WAIT):
            return jsonify(error=f"busy: {PREDICTION_SLOTS} predictions are running; try again shortly"), 503
        try:
            answer = read(classifier, read_image(upload.read()), numbers, form_flag("tta"), threshold)
        except UserError as error:
            return jsonify(error=f"the upload: {error}"), 400
        finally:
            slots.release()
        return jsonify(answer_json(answer, numbers, classifier.classes))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        """JSON instead of an HTML error page, e.g. 413 for an upload over the size limit."""
        message = (
            f"the upload is larger than {MAX_UPLOAD_BYTES // 2**20} MB" if error.code == 413 else error.description
        )
        return jsonify(error=message), error.code

    return app


def checked_address(host: object, port: object) -> tuple[str, int]:
    """A host name or address and a TCP port, or one line saying which is wrong."""
    if not isinstance(host, str) or not host.strip() or any(char.isspace() for char in host):
        raise UserError(
            f"host={host} is not a host name or address: e.g. host=127.0.0.1, or host=0.0.0.0 for every one"
        )
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise UserError(f"port={port} is not a TCP port: give a whole number from 1 to 65535")
    return host, port


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        host, port = checked_address(args.host, args.port)
        app = create_app(Path(str(args.model)))
        print(f"serving {args.model} on http://{host}:{port}/ (Ctrl+C stops)", flush=True)
        try:
            waitress.serve(
                app,
                host=host,
                port=port,
                threads=THREADS,
                channel_timeout=CHANNEL_TIMEOUT,
                connection_limit=CONNECTION_LIMIT,
                ident="mnist_cnn",
            )
        except OSError as error:
            raise UserError(
                f"cannot listen on {host}:{port} ({error.strerror}): choose another port= or host="
            ) from error


if __name__ == "__main__":
    main()
