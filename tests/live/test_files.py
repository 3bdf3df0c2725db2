"""Files on each host: rendered ones byte-equal to `aistack render`, models as locked, secrets 0600."""

from __future__ import annotations


def test_file_is_what_render_produces(rendered, on, compare):
    f = on(rendered.host).file(rendered.path)
    if not f.exists:
        compare("absent", f"sha256 {rendered.sha256[:16]}, mode {rendered.mode:o}")
        return
    compare(f"sha256 {f.sha256sum[:16]}, mode {f.mode:o}", f"sha256 {rendered.sha256[:16]}, mode {rendered.mode:o}")


def test_model_file_matches_its_lock(model_file, on, compare):
    f = on(model_file.host).file(model_file.path)
    found = f"{f.size} bytes, sha256 {f.sha256sum[:16]}" if f.exists else "absent"
    compare(found, f"{model_file.size} bytes, sha256 {model_file.sha256[:16]}")


def test_secret_file_exists_with_mode_0600(secret, on, compare):
    f = on(secret.host).file(secret.path)
    compare(f"mode {f.mode:04o}" if f.exists else "absent", "mode 0600")
