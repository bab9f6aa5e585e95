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

go_packages=(
  golang-go
  protoc-gen-go
  protoc-gen-go-grpc
  golang-google-grpc-dev
  golang-google-genproto-dev
  golang-github-golang-protobuf-1-5-dev
)
missing=()
for package in "${go_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null; then
    echo "install-client-toolchains: needs apt-get (Debian/Ubuntu) for: ${missing[*]}" >&2
    exit 1
  fi
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  echo "install-client-toolchains: apt-get install ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

stamp=clients/typescript/node_modules/.lattice-installed
if [[ ! -f $stamp || clients/typescript/package-lock.json -nt $stamp ]]; then
  (cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi
