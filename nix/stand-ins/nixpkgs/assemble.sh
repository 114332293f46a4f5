#!/usr/bin/env bash
# Put the nixpkgs stand-in (see flake.nix here) into the Nix store and print
# its store path, for `--override-input nixpkgs path:STORE_PATH`:
#
#   nix eval --override-input nixpkgs "path:$(bash nix/stand-ins/nixpkgs/assemble.sh)" …
#
# The stand-in is this directory's flake.nix and nixos/, with nixpkgs' lib
# beside them, taken from $NIXFLIP_SHARED_DIR/nixpkgs-lib (default: the
# `shared` directory beside the repository), without its own test suite
# (lib/tests). In the store, under the name `source`, Nix uses it as it is:
# a `path:` input outside the store would be hashed again on every
# evaluation. The store path is named by content, so calling this again
# gives the same path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shared="${NIXFLIP_SHARED_DIR:-$here/../../../../shared}"
lib="$shared/nixpkgs-lib/lib"
if [ ! -f "$lib/default.nix" ]; then
  echo "assemble.sh: $lib/default.nix is missing: nixpkgs' library is expected in" \
    "\$NIXFLIP_SHARED_DIR/nixpkgs-lib (default: ../shared/nixpkgs-lib beside the repository)" >&2
  exit 2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp -R "$here/flake.nix" "$here/nixos" "$tmp/"
cp -R "$lib" "$tmp/lib"
rm -rf "$tmp/lib/tests"
nix --extra-experimental-features nix-command store add-path --name source "$tmp"
