# The single entry point for developers and CI. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: help setup demo test lint typecheck unit e2e schema clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup:  ## install the Python environment (.venv) and the Debian packages the tests need
	scripts/setup.sh --system

demo:  ## run the whole chain on embedded defaults: simulators, agent, broker, ingester, API
	scripts/setup.sh
	$(PY) scripts/demo.py $(ARGS)

test: setup lint typecheck  ## set up, then lint, type-check and run every test
	$(PY) -m pytest $(ARGS)

lint:  ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:  ## mypy --strict over all packages
	$(VENV)/bin/mypy protocol/src edge/src firmware-sim/src cloud/src

schema:  ## regenerate the shipped JSON Schemas from the message types
	$(PY) -m misto.protocol.schema

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
