"""Files per host, exactly as deploy will write them: model -> stacks -> jinja2 templates.

`render_cluster` is deterministic: the same cluster gives byte-identical files. Secrets are
never rendered; stacks name the secret files that deploy generates on the host.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING


from ..model import Cluster
from ..model.locks import PROJECT_DIR
from .stacks import Stack, StackBuilder

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = PROJECT_DIR / "templates"
CONFIG_HASH_LABEL = "org.aistack.config-sha256"


@dataclass(frozen=True)
class RenderedFile:
    content: str
    mode: int = 0o644


@dataclass
class HostRender:
    files: dict[str, RenderedFile]  # absolute path on the host -> file
    stacks: dict[str, Stack]


def environment() -> Environment:
    # Imported here: `plan` reads engine_args from this package and never renders a template.
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    # JSON is YAML: every value is quoted safely. Plain json.dumps, not jinja's HTML-escaping one.
    env.filters["tojson"] = lambda value: json.dumps(value)
    return env


def render_cluster(cluster: Cluster) -> dict[str, HostRender]:
    env = environment()
    builder = StackBuilder(cluster)
    rendered = {name: HostRender(files={}, stacks={}) for name in sorted(cluster.hosts)}
    for name in sorted(cluster.services):
        stack = builder.build(name)
        host = rendered[stack.host]
        host.stacks[name] = stack
        configs = {
            f"{stack.directory}/{file_name}": RenderedFile(env.get_template(template).render(**context))
            for file_name, (template, context) in sorted(stack.configs.items())
        }
        label_config_hashes(stack, configs)
        compose = env.get_template("compose/compose.yaml.j2").render(stack=stack)
        host.files[f"{stack.directory}/compose.yaml"] = RenderedFile(compose)
        host.files.update(configs)
    return rendered


def label_config_hashes(stack: Stack, configs: dict[str, RenderedFile]) -> None:
    """Label each container with a hash of the config files it mounts.

    Compose recreates a container when its definition changes, not when a bind-mounted file
    does: the label makes an edited nginx.conf or config.yaml restart exactly its container.
    A container that reloads on a signal gets no label: deploy signals it, and records the
    hash it signalled for (roles/stacks.py).
    """
    for container in stack.containers:
        mounted = sorted(v.split(":", 1)[0] for v in container.volumes if v.split(":", 1)[0] in configs)
        if mounted:
            digest = hashlib.sha256("".join(configs[m].content for m in mounted).encode()).hexdigest()[:16]
            container.config_digest = digest
            if not container.reload_signal:
                container.labels[CONFIG_HASH_LABEL] = digest


def write_tree(rendered: dict[str, HostRender], out: Path) -> list[Path]:
    """OUT/<host>/<absolute path on that host>, like `helm template`."""
    written = []
    for host, render in rendered.items():
        for path, file in sorted(render.files.items()):
            target = out / host / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(file.content)
            target.chmod(file.mode)
            written.append(target)
    return written
