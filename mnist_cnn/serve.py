"""A draw-a-digit web page and a JSON API: `python -m mnist_cnn.serve model=<run dir> [host=127.0.0.1] [port=8000]`.

`POST /predict` takes an image as the multipart field `image` (and optional form fields
`numbers=true`, `tta=true`) and answers `{"verdict", "number", "digits": [...]}`, each digit
`{"digit", "confidence", "probabilities", "top3", "box", "preprocessed"}` (the last is the 28x28
view the model saw, as a PNG data URL); a single digit's fields are also at the top level. The
verdict is "sure", "not sure" or "no digit found" (then `digits` is empty). Bad uploads get a 4xx
JSON `{"error": ...}` and the app keeps serving. Flask's development server is meant for a local
page, hence 127.0.0.1 by default.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from mnist_cnn.startup import long_lived_imports

with long_lived_imports():
    from flask import Flask, jsonify, request
    from PIL import Image
    from werkzeug.exceptions import HTTPException

    from mnist_cnn.cli import Command, Option, parse_arguments, user_errors
    from mnist_cnn.errors import UserError
    from mnist_cnn.wild.classifier import load_classifier
    from mnist_cnn.wild.images import read_image
    from mnist_cnn.wild.reading import Answer, Digit, read

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


def png_data_url(digit) -> str:
    """The 28x28 view as a PNG data URL the page can show directly."""
    buffer = io.BytesIO()
    Image.fromarray((digit * 255).round().astype("uint8"), mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def digit_json(digit: Digit, threshold: float) -> dict:
    """One digit as the API answers it; `sure` when its confidence reaches the threshold."""
    box = digit.box
    return {
        "digit": digit.digit,
        "confidence": digit.confidence,
        "sure": digit.confidence >= threshold,
        "probabilities": [float(score) for score in digit.probabilities],
        "top3": [{"digit": label, "probability": probability} for label, probability in digit.top3()],
        "box": box and {"left": box.left, "top": box.top, "right": box.right, "bottom": box.bottom},
        "preprocessed": png_data_url(digit.view),
    }


def answer_json(answer: Answer, numbers: bool) -> dict:
    """The verdict, the number and its digits; in single-digit mode the digit's fields at the top level too."""
    digits = [digit_json(digit, answer.threshold) for digit in answer.digits]
    single = digits[0] if digits and not numbers else {}
    return {**single, "verdict": answer.verdict, "number": answer.number, "digits": digits}


def form_flag(name: str) -> bool:
    """A form field that says true (absent: false)."""
    return request.form.get(name, "false").lower() in ("true", "1", "on")


def create_app(model_dir: Path) -> Flask:
    """The app for one run's model, loaded once at start-up."""
    classifier = load_classifier(model_dir)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES

    @app.get("/")
    def page():
        return app.send_static_file("index.html")

    @app.post("/predict")
    def predict():
        upload = request.files.get("image")
        if upload is None:
            return jsonify(error="no image: send it as the multipart form field 'image'"), 400
        try:
            gray = read_image(upload.read())
        except UserError as error:
            return jsonify(error=f"the upload: {error}"), 400
        numbers = form_flag("numbers")
        return jsonify(answer_json(read(classifier, gray, numbers, form_flag("tta")), numbers))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        """JSON instead of an HTML error page, e.g. 413 for an upload over the size limit."""
        message = (
            f"the upload is larger than {MAX_UPLOAD_BYTES // 2**20} MB" if error.code == 413 else error.description
        )
        return jsonify(error=message), error.code

    return app


def main(argv: list[str] | None = None) -> None:
    with user_errors():
        args = parse_arguments(COMMAND, argv)
        app = create_app(Path(str(args.model)))
    app.run(host=str(args.host), port=int(args.port))


if __name__ == "__main__":
    main()
