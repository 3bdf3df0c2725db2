"""Block until the distributed lane's Ray cluster has every node and GPU, then exit 0 (004).

vLLM places its ranks when it starts: started before a worker joined, it fails or waits on a
placement group with no useful message. The expected counts come from the inventory
(AISTACK_RAY_NODES, AISTACK_RAY_GPUS); RAY_ADDRESS names the head's GCS. Exit 1 after
AISTACK_RAY_WAIT_S seconds with what was missing, so the container restarts and says why.
"""

import os
import sys
import time

import ray


def joined(nodes: list) -> tuple:
    """(alive nodes, their GPUs) from ray.nodes()."""
    alive = [n for n in nodes if n.get("Alive")]
    return len(alive), sum(n.get("Resources", {}).get("GPU", 0) for n in alive)


def main() -> int:
    want_nodes = int(os.environ["AISTACK_RAY_NODES"])
    want_gpus = float(os.environ["AISTACK_RAY_GPUS"])
    deadline = time.monotonic() + int(os.environ.get("AISTACK_RAY_WAIT_S", "600"))
    ray.init(address=os.environ.get("RAY_ADDRESS", "auto"), log_to_driver=False, logging_level="ERROR")
    try:
        while True:
            nodes, gpus = joined(ray.nodes())
            print(f"ray: {nodes}/{want_nodes} nodes, {gpus:g}/{want_gpus:g} GPUs", flush=True)
            if nodes >= want_nodes and gpus >= want_gpus:
                return 0
            if time.monotonic() > deadline:
                print("ray: the cluster is incomplete; check the workers' logs and the NIC pinning", file=sys.stderr)
                return 1
            time.sleep(5)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
