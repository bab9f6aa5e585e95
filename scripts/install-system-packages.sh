#!/usr/bin/env bash
# System packages (`make system-packages`; CI runs it):
#   libopenblas0-pthread: optional for users; MLX's CPU backend then uses OpenBLAS instead of the
#   reference BLAS its wheel bundles (lattice/blas.py preloads it): ~10x faster prompts, ~1.5x faster decoding.
#   postgresql: for the tests, which run the store on PostgreSQL too (scripts/postgres.sh starts a
#   throwaway server; the package's own service is not used).
#   chromium, chromium-driver: for the tests, which open the dashboard in a real headless browser
#   (tests/test_dashboard.py, Selenium). Started with --headless --no-sandbox --disable-gpu --disable-quic
#   --no-first-run --disable-background-networking --disable-component-update --disable-sync and a fresh
#   --user-data-dir, it fetches nothing (the machines have no internet).
# Idempotent; Debian/Ubuntu only (elsewhere it says so and changes nothing).
set -euo pipefail

packages=(libopenblas0-pthread postgresql chromium chromium-driver)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
((${#missing[@]})) || exit 0
if ! command -v apt-get >/dev/null; then
  echo "install-system-packages: no apt-get; install OpenBLAS yourself for faster MLX on CPU" >&2
  exit 0
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "install-system-packages: apt-get install ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
