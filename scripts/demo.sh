#!/usr/bin/env bash
# Set up (Nix, build) and run nixflip's main job on the bundled example flake:
# status, then `promote bfs.poland.xray` proven with nix eval, on a scratch
# copy so the repository itself is never modified.
#
# It builds the same (test) profile as scripts/test.sh, so running both
# compiles nixflip's dependencies once. Offline, the example's nixpkgs and
# sops-nix inputs are replaced with the stand-ins of nix/stand-ins
# (nixpkgs' real module system), through `[eval] nix_args` in the copy's
# nixflip.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nix >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's nix-bin"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin git >/dev/null
  else
    echo "nix is not installed: install it (Debian: apt-get install nix-bin) and run again" >&2
    exit 2
  fi
fi

echo "== building nixflip (cargo build: the profile scripts/test.sh uses too)"
cargo build
nixflip="$PWD/target/debug/nixflip"

echo "== the nixpkgs stand-in (nixpkgs' real lib from ../shared/nixpkgs-lib)"
stand_in="$(bash nix/stand-ins/nixpkgs/assemble.sh)"
echo "$stand_in"
sops_nix="$PWD/nix/stand-ins/sops-nix"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples/two-node "$work/two-node"
cd "$work/two-node"
cat >>nixflip.toml <<EOT

# Offline: the flake's inputs replaced for every \`nix eval\` nixflip runs.
[eval]
nix_args = [
  "--override-input", "nixpkgs", "path:$stand_in",
  "--override-input", "sops-nix", "path:$sops_nix",
]
EOT
git init -q && git add -A && git -c user.name=demo -c user.email=demo@example.invalid commit -qm "example flake"

echo "== nixflip status"
"$nixflip" status
echo
echo "== nixflip check --eval (the rules on what nix eval computes)"
"$nixflip" check --eval
echo
echo "== nixflip secrets check (with the example's public test key: decrypt and verify the MAC)"
"$nixflip" secrets check --age-key keys/example-admin.agekey
echo
echo "== nixflip promote bfs.poland.xray --yes --commit"
GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.invalid GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.invalid \
  "$nixflip" promote bfs.poland.xray --yes --commit
echo
echo "== nixflip status (after the flip)"
"$nixflip" status
echo
echo "== git log -1"
git log -1 --format='%s%n%n%b'
echo "== nixflip diff --base HEAD~1 (what the pull-request bot would post, as text)"
"$nixflip" diff --base HEAD~1
