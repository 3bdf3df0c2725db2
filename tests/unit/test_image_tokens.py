"""One image's tokens at each llama.cpp build the catalogue names, read back from that build's clip.cpp."""

import re

import pytest

from aistack import engine_flags as ef
from aistack.capacity import plan
from aistack.inventory import load_cluster
from aistack.model.catalogue import builtin
from tests.conftest import HOMELAB

GEMMA = builtin()["gemma-4-e2b-it"]


def gemma4v_limits(clip_cpp: str) -> tuple[int, int]:
    """set_limit_image_tokens(min, max) in the hparams case that handles PROJECTOR_TYPE_GEMMA4V."""
    for case in re.finditer(r"case PROJECTOR_TYPE_GEMMA4V:(.*?)\} break;", clip_cpp, re.S):
        limits = re.search(r"set_limit_image_tokens\((\d+),\s*(\d+)\)", case.group(1))
        if limits:
            return int(limits.group(1)), int(limits.group(2))
    raise AssertionError("no GEMMA4V image-token limits in clip.cpp")


@pytest.mark.network
@pytest.mark.parametrize("limits", GEMMA.llamacpp.image_tokens, ids=lambda t: f"b{t.build}")
def test_the_catalogued_limits_are_the_builds_own(limits):
    try:
        src = ef.source_dir("llamacpp", f"b{limits.build}")
    except ef.EngineSourceUnavailable as e:
        pytest.skip(f"no source for b{limits.build}: {e}")
    clip = (src / "tools" / "mtmd" / "clip.cpp").read_text(encoding="utf-8", errors="replace")
    assert gemma4v_limits(clip) == (limits.min, limits.max)


def test_a_lane_sizes_an_image_at_its_own_builds_largest():
    lanes = plan(load_cluster(HOMELAB)).lanes
    workload = 2000 + 1000  # the default prompt and answer
    # The edge image carries b11063 (an image up to 1,120 tokens); the Orin's site build b9093 (280).
    assert lanes["gemma-edge"].request_tokens == 1120 + workload
    assert lanes["gemma-orin"].request_tokens == 280 + workload


def test_between_two_builds_read_the_larger_limit_holds():
    between = GEMMA.llamacpp.tokens_per_image(10000)
    assert (between.build, between.max) == (11063, 1120)
    assert GEMMA.image_tokens(None) == GEMMA.vision.tokens_per_image  # no build: the model's budget
