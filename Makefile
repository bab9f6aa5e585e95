# The README's commands. `make serve` and `make test` set everything up on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lattice-installed
NODE_STAMP := node_modules/.lattice-installed
# Everything `make gen` writes into git (build/lattice.binpb, Envoy's descriptor set, is not committed).
GENERATED := lattice/v1 clients/python/lattice_betterproto clients/typescript/src/gen clients/go/lattice

.DEFAULT_GOAL := help
.PHONY: help setup lock lock-check system-packages clients-setup serve envoy cluster test test-shim-channel test-shim-workers test-fast lint gen gen-check breaking docs clean bench

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# uv (bootstrapped into .venv by pip) installs the versions in uv.lock; one line per step, timed.
$(STAMP): pyproject.toml uv.lock clients/python/pyproject.toml scripts/setup.sh
	@PYTHON=$(PYTHON) bash scripts/setup.sh
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP)  ## create .venv (uv, from uv.lock): Lattice with its dev tools, the default model, the Python SDK

lock: $(STAMP)  ## refresh uv.lock from pyproject.toml (commit both)
	$(BIN)/uv lock

lock-check: $(STAMP)  ## fail if uv.lock and pyproject.toml disagree (CI)
	@$(BIN)/uv lock --check || { echo "uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock"; exit 1; }

system-packages:  ## apt: OpenBLAS (optional, ~10x faster MLX prompts on Linux), PostgreSQL and Chromium (the tests)
	bash scripts/install-system-packages.sh

clients-setup:  ## install the client toolchains: Go (apt) and clients/typescript (npm ci)
	bash scripts/install-client-toolchains.sh

serve: $(STAMP)  ## run the gateway: gRPC on 127.0.0.1:50051, REST on http://127.0.0.1:8000
	HF_HUB_OFFLINE=1 $(BIN)/lattice serve

envoy: $(STAMP) $(NODE_STAMP)  ## run Envoy on http://127.0.0.1:8080 (REST, grpc-web, gRPC) in front of the gateway
	$(BIN)/python envoy/run.py

# The shim's tests, run again with the embedded shim on a loopback channel instead of the in-process one,
# and through two shim worker processes.
SHIM_TESTS = tests/shim/test_shim_errors.py tests/shim/test_openai_sdk.py tests/shim/test_strict_validation.py \
	tests/operations/test_metrics.py tests/operations/test_tracing.py tests/gateway/test_limits.py \
	tests/gateway/test_cancellation.py tests/operations/test_logging.py tests/api/test_forwarded_for.py \
	tests/shim/test_security_headers.py tests/shim/test_openapi.py

cluster: $(STAMP) $(NODE_STAMP)  ## PostgreSQL + NATS + 3 replicas + Envoy on http://127.0.0.1:8080, on loopback
	$(BIN)/python scripts/cluster.py

test: $(STAMP) $(NODE_STAMP) clients-setup system-packages  ## run the whole test suite (real model, real processes)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest
	$(MAKE) test-shim-channel test-shim-workers

test-shim-channel: $(STAMP)  ## the shim's tests over a loopback gRPC channel (the default is in-process)
	HF_HUB_OFFLINE=1 LATTICE_SHIM_TRANSPORT=channel $(BIN)/python -m pytest $(SHIM_TESTS)

test-shim-workers: $(STAMP)  ## the shim's tests through two shim worker processes
	HF_HUB_OFFLINE=1 LATTICE_SHIM_WORKERS=2 $(BIN)/python -m pytest $(SHIM_TESTS)

test-fast: $(STAMP)  ## unit tests only (no model, no processes)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP) $(NODE_STAMP) clients-setup  ## ruff, mypy, buf lint and format, tsc --strict and go vet on the clients
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	node_modules/.bin/buf lint
	node_modules/.bin/buf format --diff --exit-code proto
	cd clients/typescript && node_modules/.bin/tsc -p . --noEmit
	clients/go/run.sh vet

gen: $(STAMP) $(NODE_STAMP) clients-setup  ## regenerate lattice/v1, clients/*/ and Envoy's descriptor set from proto/
	bash scripts/gen.sh

gen-check: gen  ## fail if the generated code in git differs from a fresh `make gen`
	@git diff --exit-code -- $(GENERATED) || { echo "generated code is stale: run 'make gen' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- $(GENERATED))" || { git status --porcelain -- $(GENERATED); echo "untracked generated files: run 'make gen' and commit"; exit 1; }

breaking: $(STAMP) $(NODE_STAMP)  ## buf breaking: proto/ against the contract before its latest change
	bash scripts/buf-breaking.sh

docs: $(STAMP)  ## regenerate docs/configuration.md from the settings object
	$(BIN)/python scripts/gen_config_docs.py > docs/configuration.md

# Benchmarks (bench/README.md): not part of `make test` or CI. The peers each get their own venv under
# build/bench-venvs, pinned in bench/requirements-*.txt: installed into .venv, LiteLLM would downgrade
# packages Lattice uses.
BENCH_STAMP := $(VENV)/.lattice-bench-installed
BENCH_VENVS := build/bench-venvs

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

$(BENCH_VENVS)/%/.installed: bench/requirements-%.txt
	$(PYTHON) -m venv $(BENCH_VENVS)/$*
	$(BENCH_VENVS)/$*/bin/pip install --quiet --upgrade pip
	$(BENCH_VENVS)/$*/bin/pip install --quiet -r $<
	touch $@

bench: $(BENCH_STAMP) $(BENCH_VENVS)/litellm/.installed $(BENCH_VENVS)/local-lattice/.installed  ## benchmarks: gateway overhead (vs LiteLLM, Local Lattice), MLX throughput (vs mlx_lm.server), llama.cpp throughput (vs xllamacpp direct, MLX), relay (vs long polling), admission under overload
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.gateway_overhead
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.mlx_throughput
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.llamacpp_throughput
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.admission_overload
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.relay

clean:  ## remove the venv, node_modules and build output (not the model cache)
	rm -rf $(VENV) node_modules build clients/typescript/node_modules clients/typescript/dist
