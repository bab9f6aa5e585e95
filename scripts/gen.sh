#!/usr/bin/env bash
# Regenerates everything derived from proto/ (`make gen`). CI runs it and fails
# on any difference, so generated code is never edited by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=.venv/bin/python
BUF=node_modules/.bin/buf

# google/api and google/rpc protos come from the installed googleapis-common-protos
# wheel; they are staged under build/ for buf and never committed.
deps=build/proto-deps
site=$("$PYTHON" -c 'import google.api, pathlib; print(pathlib.Path(google.api.__path__[0]).parent)')
rm -rf "$deps"
mkdir -p "$deps/google/api" "$deps/google/rpc"
for f in annotations http field_behavior resource client launch_stage; do
  cp "$site/api/$f.proto" "$deps/google/api/"
done
for f in status error_details; do
  cp "$site/rpc/$f.proto" "$deps/google/rpc/"
done

"$BUF" format --diff --exit-code proto
"$BUF" lint

# lattice/v1 holds generated code only: empty it so a removed proto leaves nothing behind.
rm -f lattice/v1/*_pb2.py lattice/v1/*_pb2.pyi lattice/v1/*_pb2_grpc.py lattice/v1/*_pb2_grpc.pyi
"$BUF" generate
cat > lattice/v1/__init__.py <<'PY'
"""Generated from proto/lattice/v1 by `make gen`; do not edit."""
PY
