#!/usr/bin/env bash
# Every flake in this repository carries its own copy of the evaluator and of
# the cluster module (a `path:` flake sees only its own directory, and these
# flakes have no inputs). This checks that each copy is byte-identical to the
# canonical file; `--fix` overwrites the copies from the canonical files.
# templates/ holds copies too: the generator (`nixflip init`) embeds the
# cluster module and the example CI workflow from there.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
fix=0
[ "${1:-}" = "--fix" ] && fix=1

# Canonical files, and the names their copies go by.
declare -A canonical=(
  [lite.nix]=nix/lite.nix
  [matrix-cluster.nix]=nix/matrix-cluster.nix
  [github-actions.yml]=examples/ci/github-actions.yml
)

status=0
checked=0
for name in "${!canonical[@]}"; do
  src="${canonical[$name]}"
  while IFS= read -r copy; do
    [ "$copy" = "./$src" ] && continue
    checked=$((checked + 1))
    if ! cmp -s "$src" "$copy"; then
      if [ $fix = 1 ]; then
        cp "$src" "$copy"
        echo "fixed   $copy"
      else
        echo "DIFFERS $copy (from $src)"
        status=1
      fi
    fi
  done < <(find . -path ./target -prune -o -path ./.git -prune -o -type f -name "$name" -print | sort)
done

# Copies that must exist (a missing copy would not be found above).
required=(
  nix/tests/lite.nix
  examples/two-node/nix/lite.nix
  examples/two-node/nixos/module/matrix-cluster.nix
  fixtures/nixpkgs-lite/lite.nix
  templates/matrix-cluster.nix
  templates/ci/github-actions.yml
)
for dir in fixtures/clusters/*/; do
  [ -f "$dir/flake.nix" ] || continue
  required+=("${dir}nix/lite.nix" "${dir}nix/matrix-cluster.nix")
done
for f in "${required[@]}"; do
  if [ ! -f "$f" ]; then echo "MISSING $f"; status=1; fi
done

[ $status = 0 ] && echo "ok: $checked copies identical to their canonical files (${canonical[*]})"
exit $status
