#!/usr/bin/env bash
# `make breaking`: buf's breaking-change check (FILE rules, buf.yaml) of proto/
# against the contract before its latest change: HEAD while proto/ has
# uncommitted changes, else the parent of the last commit that changed proto/
# (what CI, on a clean clone of main, checks; later commits that leave the
# contract alone do not hide it). BUF_BREAKING_AGAINST=<commit> compares with
# another one. A breaking change that is intended says so in its commit message
# with a line `Breaking-Change: <what breaks and why>`; the check then reports
# and passes.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=$PWD/node_modules/.bin/buf

if [[ -n ${BUF_BREAKING_AGAINST:-} ]]; then
  base=$BUF_BREAKING_AGAINST
elif ! git diff --quiet HEAD -- proto buf.yaml || [[ -n $(git ls-files --others --exclude-standard -- proto) ]]; then
  base=HEAD
else
  changed=$(git log -1 --format=%H -- proto buf.yaml)
  base=${changed:+$changed~1}
  base=${base:-HEAD}
fi
if ! git rev-parse -q --verify "$base^{commit}" >/dev/null ||
  ! git cat-file -e "$base:buf.yaml" 2>/dev/null || ! git cat-file -e "$base:proto" 2>/dev/null; then
  echo "buf breaking: $base has no contract to compare with (first commit or a shallow clone); nothing to check"
  exit 0
fi

# The base's proto/ and buf.yaml, with the same google/ imports staged beside them.
bash scripts/gen.sh descriptor
work=build/breaking
rm -rf "$work"
mkdir -p "$work/build"
git archive "$base" proto buf.yaml | tar -x -C "$work"
cp -r build/proto-deps "$work/build/"

echo "buf breaking: proto/ against $(git rev-parse --short "$base")"
if "$BUF" breaking --against "$work"; then
  exit 0
fi
if [[ -n ${changed:-} ]] && git log -1 --format=%B "$changed" | grep -q '^Breaking-Change: .'; then
  echo "buf breaking: intended, as commit $(git rev-parse --short "$changed") says:"
  git log -1 --format=%B "$changed" | grep '^Breaking-Change: '
  exit 0
fi
echo "buf breaking: the change above breaks clients. Make it compatible, or document it with a" >&2
echo "'Breaking-Change: <what and why>' line in the commit message." >&2
exit 1
