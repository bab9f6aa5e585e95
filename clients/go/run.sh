#!/usr/bin/env bash
# Builds and runs the Go example against a running gateway:
#   clients/go/run.sh [-target 127.0.0.1:50051] ["What is the capital of France? Answer in one word."]
# GOPATH mode with Debian's Go libraries (scripts/install-client-toolchains.sh):
# build/gopath/src/lattice.dev/clients links to clients/, so the generated package
# imports as lattice.dev/clients/go/lattice/v1. `run.sh build` only builds (the
# tests); `run.sh vet` runs gofmt and go vet on the example (make lint).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
gopath=$repo/build/gopath
mkdir -p "$gopath/src/lattice.dev"
ln -sfn "$repo/clients" "$gopath/src/lattice.dev/clients"
export GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS=
binary=$repo/build/go/lattice-example
case "${1:-}" in
  vet)
    unformatted=$(gofmt -l "$repo/clients/go/example")
    [[ -z $unformatted ]] || { echo "gofmt: $unformatted" >&2; exit 1; }
    exec go vet lattice.dev/clients/go/example
    ;;
  build)
    exec go build -o "$binary" lattice.dev/clients/go/example
    ;;
esac
go build -o "$binary" lattice.dev/clients/go/example
exec "$binary" "$@"
