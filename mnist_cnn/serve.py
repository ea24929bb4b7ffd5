"""A draw-a-digit web page and a JSON API: `python -m mnist_cnn.serve model=<run dir> [host=127.0.0.1] [port=8000]`.

`POST /predict` takes an image as the multipart field `image` and answers
`{"label", "confidence", "probabilities", "classes", "preprocessed"}`: the run's class name
(a letters model answers `k`), the probabilities in the order of `classes`, and the 28x28 view the
model saw, as a PNG data URL. Bad uploads get a 4xx JSON `{"error": ...}` and the app keeps serving.
Flask's development server is meant for a local page, hence 127.0.0.1 by default.
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
    from mnist_cnn.wild.classifier import load_classifier, probabilities
    from mnist_cnn.wild.images import read_image
    from mnist_cnn.wild.preprocess import to_mnist

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
            digit = to_mnist(read_image(upload.read()))
        except UserError as error:
            return jsonify(error=f"the upload: {error}"), 400
        scores = probabilities(classifier, digit[None])[0]
        return jsonify(
            label=classifier.classes[int(scores.argmax())],
            confidence=float(scores.max()),
            probabilities=[float(score) for score in scores],
            classes=classifier.classes,
            preprocessed=png_data_url(digit),
        )

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
