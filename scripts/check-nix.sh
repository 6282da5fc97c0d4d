#!/bin/sh
# Syntax check of every Nix expression in the repository (flake.nix, nix/*.nix, any other .nix
# tracked or not ignored) with nix-instantiate --parse, which works offline. Evaluating the flake
# needs nixpkgs, which CI cannot fetch (docs: README.md "NixOS"). Exit status 1 when a file does
# not parse (nix-instantiate prints file:line:column); 0 with a message when nix-instantiate is
# missing (Debian's nix-bin, installed by scripts/install-deps.sh).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v nix-instantiate >/dev/null 2>&1; then
  echo "check-nix: SKIPPED: nix-instantiate not found (apt-get install nix-bin)"
  exit 0
fi
cd "$ROOT"
files=$(git ls-files --cached --others --exclude-standard -- '*.nix' 2>/dev/null || find . -name '*.nix' -not -path './build*')
[ -n "$files" ] || { echo "check-nix: no .nix files found" >&2; exit 1; }
n=0
failed=0
for f in $files; do
  n=$((n + 1))
  # Debian's nix warns that the nixbld group is missing on every call: harmless, filtered out.
  if ! out=$(nix-instantiate --parse "$f" 2>&1 >/dev/null); then
    echo "$out" | grep -v "nixbld" >&2
    echo "check-nix: $f does not parse" >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] || exit 1
echo "check-nix: $n .nix files parse"
