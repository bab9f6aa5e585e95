#!/usr/bin/env bash
# Installs Debian packages that are missing, saying first which and why, then each apt step with its time.
#   scripts/apt-install.sh WHO "package: why" …
# Nothing is printed when all are installed. Without apt-get it names what is missing and fails.
set -euo pipefail
who=$1
shift
missing=() reasons=()
for entry in "$@"; do
  package=${entry%%:*}
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" && continue
  missing+=("$package")
  reasons+=("${entry#*: }")
done
((${#missing[@]})) || exit 0
if ! command -v apt-get >/dev/null; then
  echo "$who: needs apt-get (Debian/Ubuntu) for: ${missing[*]}" >&2
  exit 1
fi
echo "$who: installing ${#missing[@]} Debian package(s) with apt-get:"
for i in "${!missing[@]}"; do
  printf '  %-40s %s\n' "${missing[$i]}" "${reasons[$i]}"
done
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
timed() {
  local what=$1 began=$EPOCHREALTIME
  shift
  printf '%s: %s …' "$who" "$what"
  "$@" >/dev/null
  awk -v began="$began" -v ended="$EPOCHREALTIME" 'BEGIN { printf " %.1f s\n", ended - began }'
}
timed "apt-get update" "${sudo[@]}" apt-get update -qq
timed "apt-get install ${missing[*]}" env DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
