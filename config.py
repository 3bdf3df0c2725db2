"""pyinfra's config, read from the project root before the inventory (PYINFRA.md).

It registers aistack's gate, pyinfra's `host_before_connect` callback: before pyinfra dials the
first host, the cluster is validated, preflighted and rendered, and a refusal prints its
reasons and exits with no SSH attempt. Callbacks can only be added once the state is
initialised (State.init creates the list), so the handler is added right after that call.
"""

from pyinfra.context import ctx_state

from aistack.deploy_run import gate_after_init

gate_after_init(ctx_state.get())
