#!/usr/bin/env bash
# Every test: the Rust suite (unit, snapshot, property and integration tests,
# which run the real binary, real `nix eval` on nixpkgs' real module system,
# real PostgreSQL, sshd and sops). It builds the test profile that
# scripts/demo.sh also uses, so after the demo only the tests are compiled.
set -euo pipefail
cd "$(dirname "$0")/.."
export NIX_CONFIG="${NIX_CONFIG:-}"
echo "== cargo test"
cargo test --lib --bins --tests --no-fail-fast
