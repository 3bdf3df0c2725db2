"""The rendered NanoOWL server bounds images while decoding (000: a 4K photo spiked unified memory).

NanoOWL and TensorRT cannot run here; the image path in front of them does, with real PIL.
"""

import importlib.util
import io

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
