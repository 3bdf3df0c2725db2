# Two commands matter on a fresh machine: `make demo` and `make test` (README.md).
# Each installs what it needs first; reruns skip what is already there.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
AISTACK := $(VENV)/bin/aistack
SANDBOX := inventory/sandbox.py
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps host-tools test unit demo rollout verify plan bench clean sandbox-down lock

# Everything the venv holds comes from the committed lock, hashes checked; the project itself is
# installed without resolving anything (its build backend is in the lock too). `make lock`
# re-resolves the locks: a deliberate update, reviewed as a diff.
LOCK := locks/python/dev.txt
$(VENV)/.installed: pyproject.toml $(LOCK)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

deps: $(VENV)/.installed

host-tools:
	$(SUDO) bash scripts/bootstrap.sh

test: deps host-tools
	$(PY) -m pytest

unit: deps
	$(PY) -m pytest tests/unit -m 'not network'

plan: deps
	$(AISTACK) plan --inventory inventory/homelab.py

# The sandbox rollout: test hosts up, the plan, the real rollout, real requests, live checks.
demo: deps host-tools
	$(AISTACK) sandbox up
	$(AISTACK) plan --inventory $(SANDBOX) || [ $$? -eq 10 ]
	$(VENV)/bin/pyinfra -y $(SANDBOX) deploy.py
	$(AISTACK) sandbox smoke
	$(AISTACK) verify --inventory $(SANDBOX)
	$(AISTACK) load --inventory $(SANDBOX) --ladder smoke,4 --no-evidence

# The same rollout against real hosts: edit inventory/homelab.py and group_data/ first.
rollout: deps
	$(VENV)/bin/pyinfra -y inventory/homelab.py deploy.py

verify: deps
	$(AISTACK) verify --inventory inventory/homelab.py

# Rollout figures (min/median over runs; recreates the sandbox hosts), then what the load
# generator itself can drive on loopback. Not part of `make test`.
bench: deps host-tools
	$(PY) -m aistack.sandbox.bench
	$(PY) -m aistack.load.bench

sandbox-down: deps
	$(AISTACK) sandbox down

# Re-resolve the Python locks (the venv's and the LiteLLM and Ray images'); review the diff.
lock: deps
	$(PY) -m aistack.sandbox.pylocks

clean:
	rm -rf $(VENV) .pytest_cache
