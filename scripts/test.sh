#!/usr/bin/env bash
# The whole test suite: installs the pinned test peers (the real OpenID
# provider, from package-lock.json), then runs every unit and end-to-end
# test. Needs a Rust toolchain and Node.js 18+ with npm.
set -euo pipefail
cd "$(dirname "$0")/.."
peer=tests/peers/oidc
if [ ! -d "$peer/node_modules" ] || [ "$peer/package-lock.json" -nt "$peer/node_modules" ]; then
  npm ci --prefix "$peer" --no-audit --no-fund --loglevel=error
  touch "$peer/node_modules"
fi
cargo test --locked --no-fail-fast "$@"
