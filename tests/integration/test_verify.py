"""`aistack verify` on the sandbox: green when converged, and each kind of drift caught precisely."""

from __future__ import annotations

import json

from tests.integration.sandbox_run import deploy, ssh, verify

STACKS = "/srv/aistack/stacks"
# What the sandbox cannot run is reported as skipped with its reason, never as passed.
SANDBOX_SKIPS = {
    *((h, "GPU visible in GPU containers") for h in ("main", "edge", "orin", "nx")),
    ("nx", "qdrant ready"),
    *(("main", f"alias {a} answers through nginx") for a in ("stt", "tts", "vllm-ray")),
}


def test_the_converged_sandbox_verifies_green(converged):
    report = verify()
    assert report.code == 0, report.results("FAIL") or report.stderr
    assert set(report.results("SKIP")) == SANDBOX_SKIPS
    passed = report.results("PASS")
    assert {r["result"] for r in report.rows} == {"PASS", "SKIP"}
    assert json.loads(passed[("edge", "gemma-edge runs with total_slots, n_ctx")]["found"]) == {"n_ctx": 512, "total_slots": 4}
    assert ("main", "alias vision answers through nginx") in passed
    assert {("main", f"alias {a} answers through nginx") for a in ("embed", "rerank")} <= set(passed)
    assert ("main", "gateway listens on 127.0.0.1 port 4000 only") in passed


def test_four_kinds_of_drift_are_each_caught_and_a_rerun_repairs_them(converged, baseline):
    edge_compose = f"{STACKS}/gemma-edge/compose.yaml"
    ssh("orin", "docker stop gemma-orin-server-1")  # a stopped container
    ssh("main", f"echo '# edited by hand' >> {STACKS}/gateway/config.yaml")  # a hand-edited config
    ssh("main", "chmod 644 /srv/aistack/secrets/gateway.env")  # a secret left readable
    # a lane restarted by hand with 2 slots where the model says 4
    ssh("edge", f"sed -i 's/\"-np\", \"4\"/\"-np\", \"2\"/' {edge_compose} && "
                f"docker compose -p gemma-edge -f {edge_compose} up -d --wait")

    report = verify()
    assert report.code == 1
    failed = report.results("FAIL")
    assert failed[("orin", "gemma-orin-server-1 running and healthy")]["found"].startswith("exited")
    config = failed[("main", f"{STACKS}/gateway/config.yaml as rendered")]
    assert config["found"] != config["expected"] and config["found"].endswith("mode 644")
    assert failed[("main", "/srv/aistack/secrets/gateway.env present, 0600")]["found"] == "mode 0644"
    slots = failed[("edge", "gemma-edge runs with total_slots, n_ctx")]
    assert json.loads(slots["found"]) == {"n_ctx": 1024, "total_slots": 2}
    assert json.loads(slots["expected"]) == {"n_ctx": 512, "total_slots": 4}
    # Everything else that fails is a consequence of those four, and nothing unrelated is flagged.
    consequences = {
        ("edge", f"{edge_compose} as rendered"),
        ("orin", "gemma-orin listens on 172.29.77.12 port 8080 only"),
        ("orin", "gemma-orin-server-1 open-files limit"),
        ("orin", "gemma-orin runs with total_slots, n_ctx"),
        ("orin", "only placed stacks running"),
        ("main", "alias vision answers through nginx"),  # when the burst's one request lands on orin
    }
    assert set(failed) - consequences == {("orin", "gemma-orin-server-1 running and healthy"),
                                          ("main", f"{STACKS}/gateway/config.yaml as rendered"),
                                          ("main", "/srv/aistack/secrets/gateway.env present, 0600"),
                                          ("edge", "gemma-edge runs with total_slots, n_ctx")}

    repaired = deploy()
    assert repaired.code == 0, repaired.log[-3000:]
    again = verify()
    assert again.code == 0, again.results("FAIL")


def test_verify_one_host_checks_only_that_host(converged):
    report = verify(hosts=("nx",))
    assert report.code == 0, report.results("FAIL")
    assert {r["host"] for r in report.rows} == {"nx"}
