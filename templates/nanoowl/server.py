"""NanoOWL detection over HTTP, run inside the NanoOWL image on the Jetson (rendered by aistack).

POST /detect {"image": <base64>, "prompts": ["a cup", ...], "threshold": 0.1}
  -> {"detections": [{"label": str, "score": float, "box": [x0, y0, x1, y1]}], "size": [w, h]}
GET /health -> 200 once the TensorRT engine is loaded (503 before).

Images are bounded to NANOOWL_MAX_IMAGE_PX on the long side while they are decoded: a 4K photo
decoded to 25 MB and spiked the Orin's unified memory (seed 000). The engine is built on first
start (it is bound to this GPU and TensorRT) and cached at NANOOWL_ENGINE. It is built in a
child process, so the build's copy of the model is freed before the server loads its own (the
Orin's memory is shared with the GPU); trtexec's exit code is not checked by NanoOWL, so a build
counts only when the engine file exists and is not empty.
"""

import base64
import io
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

ENGINE = os.environ.get("NANOOWL_ENGINE", "/models/nanoowl/owl_image_encoder_patch32.engine")
MODEL = os.environ.get("NANOOWL_MODEL", "google/owlvit-base-patch32")
MAX_PX = int(os.environ.get("NANOOWL_MAX_IMAGE_PX", "1280"))
HOST = os.environ.get("NANOOWL_HOST", "127.0.0.1")
PORT = int(os.environ.get("NANOOWL_PORT", "7860"))
MAX_BODY = 32 * 1024 * 1024

predictor = None
lock = threading.Lock()  # one TensorRT context: requests take turns


def bound_image(data: bytes, max_px: int = MAX_PX) -> Image.Image:
    """Decode at most max_px on the long side. JPEG's draft mode scales while decoding."""
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (max_px, max_px))
    image = image.convert("RGB")
    image.thumbnail((max_px, max_px))
    return image


def engine_built(path: str = ENGINE) -> bool:
    return os.path.isfile(path) and os.path.getsize(path) > 0


def build_engine(path: str = ENGINE, model: str = MODEL) -> None:
    """The image's own build step, in a child process; a failed build leaves no engine behind."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.partial"
    subprocess.run([sys.executable, "-m", "nanoowl.build_image_encoder_engine", partial, f"--model_name={model}"],
                   check=False)
    if not engine_built(partial):
        if os.path.exists(partial):
            os.remove(partial)
        sys.exit(f"nanoowl: the TensorRT engine build for {model} produced no engine at {partial} (trtexec's output above)")
    os.replace(partial, path)


def load_predictor():
    from nanoowl.owl_predictor import OwlPredictor

    if not engine_built():
        build_engine()
    return OwlPredictor(MODEL, image_encoder_engine=ENGINE)


class Handler(BaseHTTPRequestHandler):
    def reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self.reply(200 if predictor is not None else 503, {"ready": predictor is not None})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/detect":
            return self.reply(404, {"error": "not found"})
        if predictor is None:
            return self.reply(503, {"error": "engine loading"})
        length = int(self.headers.get("Content-Length", "0"))
        if length <= 0 or length > MAX_BODY:
            return self.reply(413, {"error": f"body must be 1..{MAX_BODY} bytes"})
        try:
            request = json.loads(self.rfile.read(length))
            image = bound_image(base64.b64decode(request["image"]))
            prompts = [str(p) for p in request["prompts"]]
            threshold = float(request.get("threshold", 0.1))
        except (KeyError, ValueError, TypeError, OSError) as exc:
            return self.reply(400, {"error": str(exc)})
        with lock:
            encodings = predictor.encode_text(prompts)
            output = predictor.predict(image=image, text=prompts, text_encodings=encodings, threshold=threshold, pad_square=False)
        detections = [
            {"label": prompts[int(label)], "score": float(score), "box": [float(v) for v in box]}
            for label, score, box in zip(output.labels, output.scores, output.boxes)
        ]
        self.reply(200, {"detections": detections, "size": list(image.size)})


def main() -> None:
    global predictor
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    predictor = load_predictor()
    threading.Event().wait()


if __name__ == "__main__":
    main()
