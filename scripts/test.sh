#!/usr/bin/env bash
# Every test: the Nix-side checks of the module evaluator and fixture flakes,
# then the Rust suite (unit, snapshot, property and integration tests, which
# run the real binary and real `nix eval`).
set -euo pipefail
cd "$(dirname "$0")/.."
export NIX_CONFIG="${NIX_CONFIG:-}"
echo "== nix: copies of the evaluator and module are identical"
bash nix/check-copies.sh
echo "== nix: the small module evaluator's own tests"
bash nix/tests/run.sh
echo "== nix: every fixture flake evaluates as expected"
bash fixtures/clusters/check-all.sh
echo "== cargo test"
cargo test --lib --bins --tests --no-fail-fast
