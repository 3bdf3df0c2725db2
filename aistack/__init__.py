"""aistack: roll a self-hosted LLM inference stack out to a small mixed GPU cluster."""

import sys
from pathlib import Path


def _plan_only() -> bool:
    """`aistack plan` reads files and prints: it never connects, so it never needs gevent."""
    # argv[0] is "-m" while `python -m aistack.cli` imports this package, the script otherwise.
    return Path(sys.argv[0]).name in ("aistack", "cli.py", "-m") and sys.argv[1:2] == ["plan"]


# pyinfra's CLI package gevent-patches the process when it is imported. Import it first, before
# ssl, urllib3 or paramiko threads exist, in every entry but `plan` (0.2 s of its 0.5 s).
if not _plan_only():
    import pyinfra_cli  # noqa: F401
