#!/usr/bin/env bash
# System packages (`make system-packages`; CI runs it):
#   libopenblas0-pthread: optional for users; MLX's CPU backend then uses OpenBLAS instead of the
#   reference BLAS its wheel bundles (lattice/blas.py preloads it): ~10x faster prompts, ~1.5x faster decoding.
#   postgresql: for the tests, which run the store on PostgreSQL too (scripts/postgres.sh starts a
#   throwaway server; the package's own service is not used).
#   chromium, chromium-driver: for the tests, which open the dashboard in a real headless browser
#   (tests/operations/test_dashboard.py, Selenium). Started with --headless --no-sandbox --disable-gpu --disable-quic
#   --no-first-run --disable-background-networking --disable-component-update --disable-sync and a fresh
#   --user-data-dir, it fetches nothing (the machines have no internet).
# Idempotent; Debian/Ubuntu only (elsewhere it says so and changes nothing).
set -euo pipefail

if ! command -v apt-get >/dev/null; then
  echo "install-system-packages: no apt-get; install OpenBLAS yourself for faster MLX on CPU" >&2
  exit 0
fi
bash "$(dirname "$0")/apt-install.sh" install-system-packages \
  "libopenblas0-pthread: a faster BLAS for MLX on CPU; \`make serve\` then uses it too (mlx_blas = auto; \`bundled\` opts out)" \
  "postgresql: the tests run the store on PostgreSQL too (a throwaway server, not the system service)" \
  "chromium: the dashboard test opens the page in a real headless browser" \
  "chromium-driver: Selenium drives that browser"
