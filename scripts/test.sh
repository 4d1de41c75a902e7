#!/usr/bin/env bash
# The whole test suite: installs the pinned test peers (the real OpenID
# provider, from package-lock.json; the Python verifiers, from
# requirements.txt, into a venv at target/pyenv), then runs every unit and
# end-to-end test. Needs a Rust toolchain, Node.js 18+ with npm and Python 3.
set -euo pipefail
cd "$(dirname "$0")/.."
peer=tests/peers/oidc
if [ ! -d "$peer/node_modules" ] || [ "$peer/package-lock.json" -nt "$peer/node_modules" ]; then
  npm ci --prefix "$peer" --no-audit --no-fund --loglevel=error
  touch "$peer/node_modules"
fi
pyenv=target/pyenv
requirements=tests/peers/python/requirements.txt
if [ ! -f "$pyenv/installed" ] || [ "$requirements" -nt "$pyenv/installed" ]; then
  python3 -m venv --clear "$pyenv"
  "$pyenv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  touch "$pyenv/installed"
fi
cargo test --locked --no-fail-fast "$@"
