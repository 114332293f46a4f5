#!/usr/bin/env bash
# Tests of nix/lite.nix through real `nix eval`. Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
nix_eval() { nix --extra-experimental-features 'nix-command flakes' eval "$@"; }
flake="path:$here"
status=0

# The copy next to the flake must be the canonical evaluator.
if ! cmp -s "$here/lite.nix" "$here/../lite.nix"; then
  echo "FAIL nix/tests/lite.nix differs from nix/lite.nix (run nix/check-copies.sh --fix)"
  status=1
fi

# 1. Value tests: every case's expr must equal its expected value.
failures="$(nix_eval --json "$flake#failures")"
ncases="$(nix_eval --json "$flake#cases" --apply 'c: builtins.length (builtins.attrNames c)')"
if [ "$failures" != "[]" ]; then
  echo "FAIL value cases: $failures"
  for name in $(echo "$failures" | tr -d '[]",' ); do
    echo "  $name: $(nix_eval --json "$flake#show.$name" 2>&1 || true)"
  done
  status=1
else
  echo "ok   $ncases value cases"
fi

# 2. Evaluations that must fail, with (part of) the expected message.
expect_fail() {
  local name="$1" pattern="$2" out
  if out="$(nix_eval --json "$flake#mustFail.$name" 2>&1)"; then
    echo "FAIL $name: evaluated to $out, expected an error matching: $pattern"
    status=1
  elif ! grep -qF -- "$pattern" <<<"$out"; then
    echo "FAIL $name: error does not contain: $pattern"
    sed 's/^/       /' <<<"$out"
    status=1
  else
    echo "ok   $name"
  fi
}
expect_fail enumRejected "The option \`test.role' has a value \`\"leader\"' that is not of type \`one of \"primary\", \"standby\"'."
expect_fail portRange "that is not of type \`16 bit unsigned integer; between 0 and 65535 (both inclusive)'"
expect_fail typeInList "The option \`test.list.\"[definition 1-entry 2]\"' has a value \`3' that is not of type \`string'"
expect_fail conflict "The option \`test.name' has conflicting definition values"
expect_fail freeformConflict "The option \`x.y' has conflicting definition values"
expect_fail undefined "The option \`test.undefined' is used but not defined."
expect_fail readOnly "The option \`test.computed' is read-only"
expect_fail nonBoolCondition "mkIf called with a non-Boolean condition"
expect_fail unknownOption "The option \`test.rol' does not exist."
expect_fail unknownOptionAtToplevel "The option \`test.rol' does not exist."
expect_fail failedAssertion "- the assertion message"
expect_fail typeErrorAtToplevel "The option \`test.port' has a value \`-1'"
expect_fail namespaceAsValue "The option \`test.nested' is an attribute set of options"

# 3. Speed: many evaluations of a module set should stay far below a second.
start=$(date +%s%N)
nix_eval --json "$flake#cases" --apply 'c: builtins.length (builtins.attrNames c)' >/dev/null
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$ms" -gt 3000 ]; then echo "FAIL evaluation took ${ms}ms"; status=1; else echo "ok   timing (${ms}ms)"; fi

exit $status
