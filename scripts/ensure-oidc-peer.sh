#!/usr/bin/env bash
# Installs the pinned OpenID provider used by the tests, the demo and the
# benchmark (tests/peers/oidc, from package-lock.json) when it is missing
# or older than its lock file.
set -euo pipefail
peer="$(dirname "$0")/../tests/peers/oidc"
if [ ! -d "$peer/node_modules" ] || [ "$peer/package-lock.json" -nt "$peer/node_modules" ]; then
  npm ci --prefix "$peer" --no-audit --no-fund --loglevel=error
  touch "$peer/node_modules"
fi
