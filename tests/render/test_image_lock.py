"""The image lock: digests come from a Docker engine, never from a guess."""

import io
import tarfile

import docker
import pytest
import yaml

from aistack.images import lock_images
from aistack.model.locks import load_image_lock

LOCAL_TAG = "aistack-locktest:1"


@pytest.fixture(scope="module")
def engine():
    client = docker.from_env()
    client.ping()
    return client


@pytest.fixture
def local_image(engine):
    """A one-file image built here: `docker import` of a tiny tarball."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"aistack lock test\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    engine.api.import_image_from_data(buffer.getvalue(), repository="aistack-locktest", tag="1")
    yield engine.images.get(LOCAL_TAG)
    engine.images.remove(LOCAL_TAG, force=True)


def test_local_image_is_locked_by_its_real_id_and_unreachable_registry_stays_null(tmp_path, engine, local_image):
    lock = tmp_path / "images.yaml"
    lock.write_text(
        yaml.safe_dump(
            {
                "images": {
                    "built-here": {"ref": LOCAL_TAG, "digest": None, "local": True},
                    # A registry on a closed loopback port: resolution fails, nothing is invented.
                    "upstream": {"ref": "127.0.0.1:9/aistack/none:1", "digest": None},
                }
            }
        )
    )
    results = {r.key: r for r in lock_images(lock, client=engine)}
    assert results["built-here"].digest == local_image.id
    assert results["upstream"].error and results["upstream"].digest is None
    reread = load_image_lock(lock)
    assert reread.images["built-here"].digest == local_image.id
    assert reread.images["upstream"].digest is None
    assert lock.read_text().startswith("# Image lock")
