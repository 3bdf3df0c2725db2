"""aistack: roll a self-hosted LLM inference stack out to a small mixed GPU cluster."""

# pyinfra's CLI package (its inventory loader is ours too) gevent-patches the process when it
# is imported. Import it first, before ssl, urllib3 or paramiko threads exist, in every entry.
import pyinfra_cli  # noqa: F401
