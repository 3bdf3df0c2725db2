"""Validated scalars: what a value from the inventory or a catalogue may be before anything uses it.

Inventory strings become paths, folder names and command arguments on hosts run as root, so
each is checked as what it is, completely (`\\Z`, never `$`, which lets a trailing newline
through), in a conservative character set. Paths are data: absolute where they must be,
normalised, no `..`, and a data root is never one of the system's own directories.
"""

from __future__ import annotations

import re
from ipaddress import ip_address
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

NAME = r"^[a-z][a-z0-9-]{0,62}\Z"  # hosts, services, clusters: also file, project and DNS labels
ALIAS = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z"  # a gateway alias: the model name clients send
HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")
# One path component: what model repos, files and catalogue names are made of on the hub and here.
COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,199}\Z")
# The directories a distribution owns: chmod or chown on them (or a `rm -rf` below) breaks the host.
SYSTEM_DIRS = frozenset(
    PurePosixPath(p) for p in ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media",
                               "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr",
                               "/usr/local", "/var", "/var/lib", "/var/log", "/var/tmp", "/var/run")
)
SYSTEM_PREFIXES = tuple(PurePosixPath(p) for p in ("/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys", "/usr"))


def check_address(value: str) -> str:
    """An IP address or a DNS name; anything else cannot be dialled."""
    try:
        ip_address(value)
    except ValueError:
        # A last label of digits is a mistyped IP address (999.1.1.1), never a DNS name.
        if not HOSTNAME.match(value) or value.rsplit(".", 1)[-1].isdigit():
            raise ValueError(f"{value!r} is neither an IP address nor a host name") from None
    return value


def check_component(value: str) -> str:
    """One folder or file name: no separator, no `..`, no hidden or control characters."""
    if not COMPONENT.match(value) or value in (".", ".."):
        raise ValueError(f"{value!r}: a name of letters, digits and . _ + - (no '/', no '..', at most 200)")
    return value


def check_relative(value: str) -> str:
    """A path inside a repo (`onnx/model.onnx`): components as above, never leaving its folder."""
    parts = value.split("/")
    if value.startswith("/") or any(not part for part in parts):
        raise ValueError(f"{value!r}: a relative path without empty components")
    for part in parts:
        if part == ".." or not COMPONENT.match(part):
            raise ValueError(f"{value!r}: each component letters, digits and . _ + - (no '..')")
    return value


def check_repo(value: str) -> str:
    """A hub repo id `org/name`, or a single folder name (a catalogue name used as the folder)."""
    parts = value.split("/")
    if len(parts) > 2:
        raise ValueError(f"{value!r}: a repo id is 'org/name'")
    for part in parts:
        check_component(part)
    return value


def check_host_path(value: str) -> str:
    """An absolute path on a host, in its normal form, of conservative characters."""
    if not value.startswith("/") or "//" in value or (len(value) > 1 and value.endswith("/")):
        raise ValueError(f"{value!r} must be an absolute path in normal form (no '//', no trailing '/')")
    for part in value.split("/")[1:]:
        if part in (".", ".."):
            raise ValueError(f"{value!r} must not contain '.' or '..'")
        if part and not COMPONENT.match(part):
            raise ValueError(f"{value!r}: each component letters, digits and . _ + - only")
    if len(value) > 1024:
        raise ValueError("a path of at most 1024 characters")
    return value


def check_data_root(value: str) -> str:
    """A folder deploy creates, chmods and fills: never a system directory, nor inside one."""
    path = PurePosixPath(check_host_path(value))
    if path in SYSTEM_DIRS:
        raise ValueError(f"{value} is a system directory: use a folder of its own, e.g. /srv/aistack")
    if any(path.is_relative_to(p) for p in SYSTEM_PREFIXES):
        raise ValueError(f"{value} lies inside a system directory ({path.parts[1]}): use e.g. /srv/...")
    return value


def under(root: str, *parts: str) -> str:
    """`root/part/...` computed with path operations, refused if it would leave `root`."""
    joined = PurePosixPath(root).joinpath(*parts)
    if ".." in joined.parts or not joined.is_relative_to(root) or joined == PurePosixPath(root):
        raise ValueError(f"{'/'.join(parts)!r} would leave {root}")
    return str(joined)


def _int_as_text(value: object) -> object:
    """Kernel settings are text; an int written for one (somaxconn: 4096) is what was meant."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Name = Annotated[str, Field(pattern=NAME)]
ImageKey = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}\Z")]  # a key of locks/images.yaml
FileKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z")]  # a catalogue file key (Q4_K_M)
Nic = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,14}\Z")]  # an interface name (IFNAMSIZ)
IbHca = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:,=^-]{0,63}\Z")]  # NCCL_IB_HCA's list
Alias = Annotated[str, Field(pattern=ALIAS)]
Address = Annotated[str, AfterValidator(check_address)]
Component = Annotated[str, AfterValidator(check_component)]
RelativePath = Annotated[str, AfterValidator(check_relative)]
RepoId = Annotated[str, AfterValidator(check_repo)]
HostPath = Annotated[str, AfterValidator(check_host_path)]
DataRoot = Annotated[str, AfterValidator(check_data_root)]
SysctlValue = Annotated[str, BeforeValidator(_int_as_text), Field(pattern=r"^[0-9A-Za-z .:_/-]{1,256}\Z")]
# Free text shown to users and written into YAML files (reasons, notes): one line, printable.
Text = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]{3,500}\Z")]
