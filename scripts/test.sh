#!/usr/bin/env bash
# The whole test suite: installs the pinned test peers (the real OpenID
# provider, from package-lock.json; the Python verifiers, from
# requirements.txt, into a venv at target/pyenv), then runs every unit and
# end-to-end test. Needs a Rust toolchain, Node.js 18+ with npm and Python 3.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-oidc-peer.sh
pyenv=target/pyenv
requirements=tests/peers/python/requirements.txt
if [ ! -f "$pyenv/installed" ] || [ "$requirements" -nt "$pyenv/installed" ]; then
  python3 -m venv --clear "$pyenv"
  "$pyenv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  touch "$pyenv/installed"
fi
cargo test --locked --no-fail-fast "$@"
