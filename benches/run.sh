#!/usr/bin/env bash
# Build the release binary, then run the benchmarks and print their tables.
#
#   benches/run.sh              # 15 timed runs per operation
#   NIXFLIP_BENCH_RUNS=31 benches/run.sh
#
# Each benchmark measures its baseline (nix-instantiate --parse) in the same
# run and prints ratios; a missed target prints MISS but never fails.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "machine: $(nproc) CPUs, $(uname -srm)"
grep -m1 'model name' /proc/cpuinfo 2>/dev/null || true
nix-instantiate --version 2>/dev/null || echo "nix-instantiate: not found (no baseline)"
rustc --version

cargo build --release
cargo bench --bench editor
cargo bench --bench check
cargo bench --bench promote
cargo bench --bench large
cargo bench --bench scratch
# Needs root, sshd and PostgreSQL (as the live tests do).
cargo bench --bench live
cargo bench --bench switchover
