"""The rendered NanoOWL server bounds images while decoding (000: a 4K photo spiked unified memory).

NanoOWL and TensorRT cannot run here; the image path in front of them does, with real PIL.
"""

import importlib.util
import io

import pytest

from PIL import Image

from aistack.render import TEMPLATES


def server_module():
    spec = importlib.util.spec_from_file_location("nanoowl_server", TEMPLATES / "nanoowl" / "server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 80, 40)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_a_4k_photo_is_decoded_at_most_1280_px_on_the_long_side():
    image = server_module().bound_image(jpeg(3840, 2160), 1280)
    assert max(image.size) <= 1280 and image.size[0] > image.size[1]
    raw = image.size[0] * image.size[1] * 3
    assert raw <= 1280 * 720 * 3 < 25_000_000 // 6  # vs 25 MB for the full 4K decode


def test_small_images_pass_unchanged():
    assert server_module().bound_image(jpeg(640, 480), 1280).size == (640, 480)


def stand_in_builder(tmp_path, monkeypatch, body: str) -> None:
    """A `nanoowl.build_image_encoder_engine` module for the child process: TensorRT cannot run
    here, so the stand-in does what the real one does at its two ends (an engine, or nothing
    and exit 0: NanoOWL ignores trtexec's exit code)."""
    package = tmp_path / "site" / "nanoowl"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "build_image_encoder_engine.py").write_text("import sys\npath = sys.argv[1]\n" + body)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))


def test_a_failed_engine_build_stops_the_server_with_the_reason_and_leaves_no_engine(tmp_path, monkeypatch):
    stand_in_builder(tmp_path, monkeypatch, "print('trtexec: failed to parse onnx')\n")
    engine = tmp_path / "engines" / "owl.engine"
    server = server_module()
    with pytest.raises(SystemExit, match="produced no engine") as stopped:
        server.build_engine(str(engine), "google/owlvit-base-patch32")
    assert "google/owlvit-base-patch32" in str(stopped.value.code)
    assert list(engine.parent.iterdir()) == [] and not server.engine_built(str(engine))


def test_a_built_engine_is_moved_into_place_and_found_on_the_next_start(tmp_path, monkeypatch):
    stand_in_builder(tmp_path, monkeypatch, "open(path, 'wb').write(b'engine')\n")
    engine = tmp_path / "engines" / "owl.engine"
    server = server_module()
    server.build_engine(str(engine), "google/owlvit-base-patch32")
    assert engine.read_bytes() == b"engine" and server.engine_built(str(engine))
    assert not (tmp_path / "engines" / "owl.engine.partial").exists()
