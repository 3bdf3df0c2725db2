"""The local sandbox cluster: four Debian trixie test hosts named after the homelab's nodes.

Each host is a container of ``aistack-testhost`` (sshd with key auth, its own Docker engine
and compose v2), on one user-defined bridge so the hosts reach each other by address, with
sshd published on a 127.0.0.1 port. ``inventory/sandbox.py`` reads the same table, so
pyinfra and ``aistack verify`` reach the hosts exactly as they would reach real ones.

Everything made here is labelled ``org.aistack.sandbox`` and removed by ``down``; the SSH key
and known_hosts live under ``.sandbox/`` in the project (git-ignored).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from dataclasses import dataclass

import docker
import paramiko
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from docker.errors import NotFound

from ..model.locks import load_image_lock
from ..rollout import LOCAL_IMAGE_IDS
from .nodes import (KEY_FILE, KNOWN_HOSTS, NODES, SSH_PORT_BASE, STATE_DIR, SUBNET, TestHost,  # noqa: F401 (the table, re-exported)
                    container_name, hosts, inventory_hosts, nofile_ceiling)
from .tiny_gguf import generate, generate_bert

log = logging.getLogger(__name__)

LABEL = "org.aistack.sandbox"
NETWORK = "aistack-sandbox"
IMAGE = "aistack-testhost:latest"
# The sandbox's model: generated deterministically (seed 0), locked by its sha256 in locks/models.yaml.
TINY_GGUF = STATE_DIR / "models" / "tiny.gguf"
TINY_BERT_GGUF = STATE_DIR / "models" / "tiny-bert.gguf"  # the embed and rerank lanes' model
# Images each sandbox host gets (built here; nothing can be pulled). Every host has the CPU
# llama.cpp image, so a lane can move anywhere by an inventory edit, as on real nodes.
# Every host runs a node exporter; main runs Prometheus; orin and nx form the distributed lane's
# Ray cluster (group_data/sandbox.py).
HOST_IMAGES = {
    "main": ("aistack-llamacpp:latest", "aistack-litellm:latest", "aistack-nginx:latest", "aistack-prometheus:latest",
             "aistack-node-exporter:latest"),
    "edge": ("aistack-llamacpp:latest", "aistack-node-exporter:latest"),
    "orin": ("aistack-llamacpp:latest", "aistack-node-exporter:latest", "aistack-ray:latest"),
    "nx": ("aistack-llamacpp:latest", "aistack-node-exporter:latest", "aistack-ray:latest"),
}


# ---- keys ---------------------------------------------------------------------------------


def ensure_key() -> str:
    """The sandbox's SSH key pair (ed25519, 0600), generated once; returns the public key."""
    STATE_DIR.mkdir(mode=0o700, exist_ok=True)
    if not KEY_FILE.exists():
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption())
        fd = os.open(KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private)
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        KEY_FILE.with_suffix(".pub").write_bytes(public + b" aistack-sandbox\n")
    return KEY_FILE.with_suffix(".pub").read_text().strip()


# ---- lifecycle ----------------------------------------------------------------------------


def _client() -> docker.DockerClient:
    return docker.from_env(timeout=600)


def _network(client: docker.DockerClient):
    try:
        return client.networks.get(NETWORK)
    except NotFound:
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(SUBNET))])
        return client.networks.create(NETWORK, driver="bridge", ipam=ipam, labels={LABEL: "1"})


def _container(client: docker.DockerClient, name: str):
    try:
        return client.containers.get(name)
    except NotFound:
        return None


def _start_host(client: docker.DockerClient, host: TestHost, public_key: str):
    """Run one test host: the capabilities a nested dockerd needs, never --privileged."""
    existing = _container(client, host.container)
    if existing is not None and existing.image.id != client.images.get(IMAGE).id:
        # Built from an older test host image (its sshd or init changed): reimage it, disk and all,
        # so the tests never run against a host that is not what this checkout builds.
        _remove_host(client, host)
        existing = None
    if existing is not None:
        if existing.status != "running":
            existing.start()
        # The key pair may be new (another checkout, a deleted .sandbox/): authorise this one.
        existing.exec_run(["sh", "-c", 'printf "%s\\n" "$0" > /root/.ssh/authorized_keys', public_key])
        return existing
    api = client.api
    host_config = api.create_host_config(
        port_bindings={22: ("127.0.0.1", host.ssh_port)},
        cap_add=["SYS_ADMIN", "NET_ADMIN"],
        security_opt=["seccomp=unconfined", "apparmor=unconfined"],
        cgroupns="host",
        binds={
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
            # The inner engine's images and containers survive a host restart (like a disk).
            f"{host.container}-docker": {"bind": "/var/lib/docker", "mode": "rw"},
        },
        network_mode=NETWORK,
    )
    # `--security-opt systempaths=unconfined`, which the SDK does not spell: /proc/sys writable,
    # so the base role really sets the network sysctls (per network namespace: never this machine's).
    host_config |= {"MaskedPaths": [], "ReadonlyPaths": []}
    created = api.create_container(
        IMAGE,
        name=host.container,
        hostname=host.name,
        detach=True,
        labels={LABEL: "1", f"{LABEL}.host": host.name},
        environment={"AUTHORIZED_KEYS": public_key},
        ports=[22],
        host_config=host_config,
        # A fixed address, as a real node has: services bind to it and peers route to it.
        networking_config=api.create_networking_config({NETWORK: api.create_endpoint_config(ipv4_address=host.address)}),
    )
    container = client.containers.get(created["Id"])
    container.start()
    return container


def _wait_for_ssh(host: TestHost, timeout_s: float = 90) -> str:
    """Connect with the sandbox key until sshd and the inner engine answer; return the host key line."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)  # refused connections while sshd starts are expected
    while time.monotonic() < deadline:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # recorded below, then pinned
        try:
            client.connect("127.0.0.1", port=host.ssh_port, username="root", key_filename=str(KEY_FILE),
                           timeout=5, allow_agent=False, look_for_keys=False)
            _, stdout, _ = client.exec_command("docker info --format '{{.ServerVersion}}'", timeout=10)
            if stdout.channel.recv_exit_status() == 0:
                key = client.get_transport().get_remote_server_key()
                return f"[127.0.0.1]:{host.ssh_port} {key.get_name()} {key.get_base64()}"
        except (OSError, paramiko.SSHException) as exc:
            last = exc
        finally:
            client.close()
        time.sleep(1)
    # The client only sees a dropped connection; sshd's log says why (a refused key, a penalty, a dead engine).
    log = subprocess.run(["docker", "logs", "--tail", "15", host.container], capture_output=True, text=True, check=False)
    raise TimeoutError(f"sandbox host {host.name}: no SSH with a running Docker engine on 127.0.0.1:{host.ssh_port} "
                       f"({last}); its log ends:\n{log.stdout}{log.stderr}")


def _load_images(host: TestHost, images: tuple[str, ...]) -> None:
    """``docker save | docker load`` each image the host runs, unless its engine already has that id."""
    for image in images:
        want = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", image],
                              capture_output=True, text=True, check=True).stdout.strip()
        have = subprocess.run(["docker", "exec", host.container, "docker", "image", "inspect", "-f", "{{.Id}}", image],
                              capture_output=True, text=True, check=False).stdout.strip()
        if have == want:
            continue
        log.info("%s: loading %s into its engine", host.name, image)
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        assert save.stdout is not None
        subprocess.run(["docker", "exec", "-i", host.container, "docker", "load", "-q"],
                       stdin=save.stdout, check=True, stdout=subprocess.DEVNULL)
        save.stdout.close()
        if save.wait() != 0:
            raise subprocess.CalledProcessError(save.returncode, ["docker", "save", image])


def up(only: list[str] | None = None) -> list[TestHost]:
    """Build (cached) and start the test hosts, load their images, pin their host keys."""
    from .images import ensure_images

    ensure_images(["aistack-testhost", *sorted({ref.split(":")[0] for refs in HOST_IMAGES.values() for ref in refs})])
    _lock_local_images()
    if not TINY_GGUF.exists():
        generate(TINY_GGUF, quiet=True)
    if not TINY_BERT_GGUF.exists():
        generate_bert(TINY_BERT_GGUF, quiet=True)
    public_key = ensure_key()
    client = _client()
    _network(client)
    chosen = [h for h in hosts() if not only or h.name in only]
    for host in chosen:
        _start_host(client, host, public_key)
    known = {}
    for host in chosen:
        known[host.name] = _wait_for_ssh(host)
        _load_images(host, HOST_IMAGES[host.name])
    _write_known_hosts(known)
    return chosen


def _lock_local_images() -> None:
    """Record the real ids of the images built here (deploy checks each host runs exactly these)."""
    client = _client()
    lock = load_image_lock()
    ids = {key: client.images.get(entry.ref).id for key, entry in lock.images.items() if entry.local}
    LOCAL_IMAGE_IDS.parent.mkdir(exist_ok=True)
    LOCAL_IMAGE_IDS.write_text(yaml.safe_dump(ids, sort_keys=True))


def _write_known_hosts(lines: dict[str, str]) -> None:
    kept = {}
    if KNOWN_HOSTS.exists():
        for line in KNOWN_HOSTS.read_text().splitlines():
            kept[line.split(" ", 1)[0]] = line
    for line in lines.values():
        kept[line.split(" ", 1)[0]] = line
    KNOWN_HOSTS.write_text("".join(f"{line}\n" for line in sorted(kept.values())))


def _remove_host(client: docker.DockerClient, host: TestHost) -> None:
    """Remove a host's container and its Docker disk (the inner engine's volume)."""
    container = _container(client, host.container)
    if container is not None:
        container.remove(force=True, v=True)
    try:
        client.volumes.get(f"{host.container}-docker").remove(force=True)
    except NotFound:
        pass


def stop(name: str) -> None:
    """Stop one host (as a powered-off node); ``up`` starts it again with its disk intact."""
    container = _container(_client(), container_name(name))
    if container is not None:
        container.stop(timeout=20)


def down() -> list[str]:
    """Remove every container, volume and network the sandbox made, and its known_hosts."""
    client = _client()
    removed = []
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True, v=True)
        removed.append(container.name)
    for host in hosts():
        _remove_host(client, host)
    for network in client.networks.list(filters={"label": LABEL}):
        network.remove()
    KNOWN_HOSTS.unlink(missing_ok=True)
    return removed


@dataclass(frozen=True)
class HostStatus:
    name: str
    state: str  # running, exited, absent
    address: str
    ssh: str


def status() -> list[HostStatus]:
    client = _client()
    result = []
    for host in hosts():
        container = _container(client, host.container)
        state = container.status if container is not None else "absent"
        result.append(HostStatus(host.name, state, host.address, f"127.0.0.1:{host.ssh_port}"))
    return result
