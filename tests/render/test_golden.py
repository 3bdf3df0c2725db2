"""Golden files: the homelab's rendered tree is committed, so every output change is a reviewed diff.

Regenerate after an intended change with `AISTACK_UPDATE_GOLDEN=1 pytest tests/render/test_golden.py`
and review `git diff tests/render/golden`.
"""

import os
from pathlib import Path

from aistack.inventory import load_cluster
from aistack.render import render_cluster, write_tree
from tests.conftest import HOMELAB

GOLDEN = Path(__file__).parent / "golden" / "homelab"


def test_homelab_render_matches_golden_files(tmp_path):
    written = write_tree(render_cluster(load_cluster(HOMELAB)), tmp_path)
    rendered = {p.relative_to(tmp_path): p.read_text() for p in written}
    if os.environ.get("AISTACK_UPDATE_GOLDEN"):
        for rel, text in rendered.items():
            (GOLDEN / rel).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / rel).write_text(text)
    golden = {p.relative_to(GOLDEN): p.read_text() for p in GOLDEN.rglob("*") if p.is_file()}
    assert sorted(rendered) == sorted(golden), "files added or removed: regenerate and review"
    for rel, text in rendered.items():
        assert text == golden[rel], f"{rel} differs from its golden file: regenerate and review the diff"


def test_render_is_deterministic(tmp_path):
    first = render_cluster(load_cluster(HOMELAB))
    second = render_cluster(load_cluster(HOMELAB))
    assert {h: r.files for h, r in first.items()} == {h: r.files for h, r in second.items()}
