"""The whole rollout: `pyinfra -y inventory/homelab.py deploy.py` (the sandbox: inventory/sandbox.py).

Order per host: base preparation, container runtime, model files, images, secrets, stacks.
The cluster is validated and preflighted once, before any host is touched; any BLOCK, unpinned
image or unverified model refuses the whole run with the reasons. Each host's state is then read
in one command, and only what differs from it becomes an operation.

Data (`--data key=value`): aistack_set='["dotted.path=value", ...]' applies overrides like
`aistack plan --set`; force_runtime=true lets runtime and model-runtime changes share a run.
"""

from pyinfra import host

from aistack.deploy_run import current_rollout, runtime_pending
from roles import artifacts, base, docker_engine, nvidia, observed, stacks

rollout = current_rollout()
plan = rollout.hosts[host.name]
seen = observed(rollout, host.name)

base.prepare(plan.host, seen)
runtime = docker_engine.engine(plan.host, seen) + nvidia.toolkit(plan.host, seen)
artifacts.models(plan, seen)
artifacts.images(plan, seen)
artifacts.secrets(plan, seen, lambda name: observed(rollout, name))
if not runtime_pending(runtime, force=bool(host.data.get("force_runtime"))):
    stacks.converge(plan, seen)
