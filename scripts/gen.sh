#!/usr/bin/env bash
# Regenerates everything derived from proto/ (`make gen`): the server's Python in
# lattice/v1, the clients in clients/*/ (buf.gen.yaml), and the descriptor set
# Envoy's transcoder reads (build/lattice.binpb). CI runs it and fails on any
# difference, so generated code is never edited by hand.
#
#   scripts/gen.sh              everything
#   scripts/gen.sh descriptor   only build/lattice.binpb (envoy/run.py calls this)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=.venv/bin/python
BUF=node_modules/.bin/buf
# betterproto2's plugin formats its output with the `ruff` it finds on PATH; the
# Go plugins are Debian's, in /usr/bin (scripts/install-client-toolchains.sh).
export PATH="$PWD/.venv/bin:$PATH"

# google/api and google/rpc protos come from the installed googleapis-common-protos
# wheel; they are staged under build/ for buf and never committed.
stage_deps() {
  local deps=build/proto-deps site
  site=$("$PYTHON" -c 'import google.api, pathlib; print(pathlib.Path(google.api.__path__[0]).parent)')
  rm -rf "$deps"
  mkdir -p "$deps/google/api" "$deps/google/rpc"
  for f in annotations http field_behavior resource client launch_stage; do
    cp "$site/api/$f.proto" "$deps/google/api/"
  done
  for f in status error_details; do
    cp "$site/rpc/$f.proto" "$deps/google/rpc/"
  done
}

# Envoy's grpc_json_transcoder needs every file the services use, imports included
# (google/api/http for the routes, google/rpc for error details). Written to a
# temporary name first so a running `make envoy` never reads half a file.
build_descriptor() {
  mkdir -p build
  "$BUF" build --exclude-source-info -o build/lattice.binpb.tmp
  mv build/lattice.binpb.tmp build/lattice.binpb
}

stage_deps
if [[ "${1:-}" == descriptor ]]; then
  build_descriptor
  exit 0
fi

"$BUF" format --diff --exit-code proto
"$BUF" lint

for tool in clients/typescript/node_modules/.bin/protoc-gen-es protoc-gen-go protoc-gen-go-grpc; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool: run scripts/install-client-toolchains.sh (or make clients-setup)" >&2
    exit 1
  }
done

# Each output directory holds generated code only: empty it so a removed proto
# leaves nothing behind.
rm -f lattice/v1/*_pb2.py lattice/v1/*_pb2.pyi lattice/v1/*_pb2_grpc.py lattice/v1/*_pb2_grpc.pyi
rm -rf clients/python/lattice_betterproto clients/typescript/src/gen clients/go/lattice
"$BUF" generate
# The TypeScript SDK also decodes google.rpc ErrorInfo/RetryInfo: its own template, same src/gen.
"$BUF" generate --template clients/typescript/buf.gen.yaml
cat > lattice/v1/__init__.py <<'PY'
"""Generated from proto/lattice/v1 by `make gen`; do not edit."""
PY
build_descriptor
