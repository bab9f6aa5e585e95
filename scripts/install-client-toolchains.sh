#!/usr/bin/env bash
# Installs what the generated clients need to be generated, built and run
# (`make gen`, `make test`; CI runs it from .ci/run). Idempotent and quick when
# everything is there:
#   Go: Debian's go 1.19, protoc-gen-go 1.28, protoc-gen-go-grpc and the Go
#       libraries the generated code compiles against, used in GOPATH mode
#       (clients/go/run.sh). golang-github-golang-protobuf-1-5-dev is named on
#       purpose: the 1.3 default conflicts with google.golang.org/protobuf and panics.
#   TypeScript: clients/typescript/node_modules from its lockfile (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."

bash "$(dirname "$0")/apt-install.sh" install-client-toolchains \
  "golang-go: builds and runs the Go client (clients/go)" \
  "protoc-gen-go: make gen writes the Go client's messages" \
  "protoc-gen-go-grpc: make gen writes the Go client's gRPC stubs" \
  "golang-google-grpc-dev: grpc-go, which the Go client compiles against" \
  "golang-google-genproto-dev: google/api and google/rpc types for Go" \
  "golang-github-golang-protobuf-1-5-dev: protobuf for Go (1.5: the 1.3 default conflicts and panics)"

stamp=clients/typescript/node_modules/.lattice-installed
if [[ ! -f $stamp || clients/typescript/package-lock.json -nt $stamp ]]; then
  (cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi
