#!/bin/sh
# nixflip pre-commit hook (nixflip hook install; safe to edit or delete)
#
# Checks the cluster as it is staged (`nixflip check --staged`: what this
# commit records, whatever the work tree holds) when a staged change - an
# edit, a rename, a deletion - touches a .nix file or nixflip.toml of the
# flake. Error findings refuse the commit.
# It holds no absolute path: the repository is found where it is when the
# hook runs, so a moved or copied repository is checked in its own place.
flake={{ flake }}  # the flake's directory in the repository ('.': its top)

if ! command -v nixflip >/dev/null 2>&1; then
  echo "nixflip pre-commit hook: nixflip is not on PATH, so the staged cluster cannot be checked; install it (in nixflip's source: cargo install --locked --path .) or skip this check once: git commit --no-verify" >&2
  exit 1
fi
top=$(git rev-parse --show-toplevel) || exit 1
cd "$top" || exit 1
git diff --cached --quiet -- "$flake/*.nix" "$flake/nixflip.toml" && exit 0
exec nixflip --flake "$top/$flake" check --staged
