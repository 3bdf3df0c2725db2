"""The local sandbox cluster: four test hosts on this machine named after the homelab's nodes.

`aistack sandbox up` starts them (Debian trixie, sshd, their own Docker engine); pyinfra and
`aistack verify` reach them over real SSH on 127.0.0.1 ports with the sandbox key. What runs
where, and the CPU variant of the stack, is group_data/sandbox.py over group_data/all.py.
"""

from aistack.sandbox import nodes as _nodes

sandbox = _nodes.inventory_hosts()
