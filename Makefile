# Two commands matter on a fresh machine: `make demo` and `make test` (README.md).
# Each installs what it needs first; reruns skip what is already there.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
AISTACK := $(VENV)/bin/aistack
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps host-tools test unit demo plan bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
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

demo: deps
	$(AISTACK) plan --inventory inventory/homelab.py || [ $$? -eq 10 ]

clean:
	rm -rf $(VENV) .pytest_cache
