# The single entry point for developers and CI. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: help setup demo test lint typecheck schema docs lock clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup:  ## install the Python environment (.venv) and the Debian packages the tests need
	scripts/setup.sh --system

demo:  ## run the whole chain on embedded defaults: simulators, agent, broker, ingester, API
	scripts/demo $(ARGS)

test:  ## set up what is missing, then lint, type-check and run every test
	scripts/test $(ARGS)

lint:  ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:  ## mypy --strict over all packages
	$(VENV)/bin/mypy protocol/src edge/src firmware-sim/src cloud/src tests scripts/demo.py scripts/sync_docs.py bench

schema:  ## regenerate the shipped JSON Schemas from the message types, then the docs quoting them
	$(PY) -m misto.protocol.schema
	$(PY) scripts/sync_docs.py

docs:  ## refresh the files quoted in docs/ (samples, schemas)
	$(PY) scripts/sync_docs.py

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache

lock:  ## re-resolve the newest allowed versions into constraints.txt
	rm -rf .run/lock-venv && python3 -m venv .run/lock-venv
	.run/lock-venv/bin/pip install -q ./protocol './edge[camera]' ./firmware-sim ./cloud -r requirements-dev.txt
	{ echo "# Pinned versions for a reproducible install; regenerate with: make lock"; \
	  .run/lock-venv/bin/pip freeze --exclude-editable | grep -v '^misto-' ; } > constraints.txt
	rm -rf .run/lock-venv
