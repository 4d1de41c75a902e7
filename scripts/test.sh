#!/usr/bin/env bash
# The whole test suite: installs the pinned test peers this checkout needs
# (none outside cargo yet), then runs every unit and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --no-fail-fast "$@"
