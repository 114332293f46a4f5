#!/usr/bin/env python3
"""Time shell commands in interleaved rounds and print medians and ratios.

Compares builds of nixflip (or anything else) under the same machine load:
each round runs every command once, in order, after one warm-up call each.
The first command is the baseline of the ratios.

    python3 benches/ab.py ROUNDS NAME 'COMMAND' [NAME 'COMMAND']...

Example (two release binaries on the kept 200-host check input):

    python3 benches/ab.py 31 \\
      parse  "nix-instantiate --parse $DIR/flake.nix $DIR/hosts/*.nix" \\
      before "/tmp/nixflip-before --flake $DIR check -q" \\
      after  "target/release/nixflip --flake $DIR check -q"
"""

import statistics
import subprocess
import sys
import time


def main() -> int:
    if len(sys.argv) < 4 or len(sys.argv) % 2 != 0:
        print(__doc__, file=sys.stderr)
        return 2
    rounds = int(sys.argv[1])
    pairs = list(zip(sys.argv[2::2], sys.argv[3::2]))
    run = lambda cmd: subprocess.run(
        cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _, cmd in pairs:
        run(cmd)
    times = {name: [] for name, _ in pairs}
    for _ in range(rounds):
        for name, cmd in pairs:
            start = time.perf_counter()
            run(cmd)
            times[name].append((time.perf_counter() - start) * 1000)
    base = statistics.median(times[pairs[0][0]])
    for name, _ in pairs:
        median = statistics.median(times[name])
        print(
            f"{name:30s} median {median:8.1f} ms   min {min(times[name]):8.1f} ms   ratio {median / base:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
