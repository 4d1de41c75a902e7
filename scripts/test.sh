#!/usr/bin/env bash
# The whole test suite: installs the pinned test peers (the real OpenID
# provider, from package-lock.json; the real SAML IdP (pysaml2), the Python
# verifiers, the SCIM compliance tool (scim2-cli), the Kubernetes
# manifest validator (kubernetes-validate), selenium for the browser
# test and matplotlib for the soak's plot, from their
# requirements.txt files, into one venv at target/pyenv: their shared
# packages carry the same pins), then runs every unit and end-to-end test. Needs a Rust
# toolchain; the system packages (Node.js and npm, Python 3, PostgreSQL,
# Chromium, libxmlsec1, ...) are installed from Debian when missing, by
# scripts/install-system-packages.sh (with sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-system-packages.sh
scripts/ensure-oidc-peer.sh
pyenv=target/pyenv
requirements=(tests/peers/python/requirements.txt tests/peers/saml/requirements.txt tests/peers/scim/requirements.txt
              tests/peers/kubernetes/requirements.txt tests/peers/browser/requirements.txt
              tests/peers/soak/requirements.txt)
stale=false
[ -f "$pyenv/installed" ] || stale=true
for file in "${requirements[@]}"; do
  if [ "$file" -nt "$pyenv/installed" ]; then stale=true; fi
done
if $stale; then
  python3 -m venv --clear "$pyenv"
  "$pyenv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]/#/-r}"
  touch "$pyenv/installed"
fi
# The flood test holds a few thousand sockets at both ends: use the hard
# limit on open files (containers often start with a soft limit of 1024).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo test --locked --no-fail-fast "$@"
# The small crates under crates/ (the FFI kept out of doorward's own code)
# have tests of their own; with no arguments, the whole suite runs them too.
if [ "$#" -eq 0 ]; then
  cargo test --locked --no-fail-fast -p doorward-xmldsig -p doorward-malloc-trim
fi
