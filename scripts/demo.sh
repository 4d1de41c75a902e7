#!/usr/bin/env bash
# Starts the demo: a sample app on 127.0.0.1:3000 and doorward in front of it
# on http://127.0.0.1:4180. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
python3 demo/app.py 3000 &
app=$!
trap 'kill $app 2>/dev/null || true' EXIT
echo
echo "doorward demo: open http://127.0.0.1:4180/ (the app shows the headers it receives)"
echo "try: curl -H 'X-Forwarded-User: mallory' http://127.0.0.1:4180/   # stripped before the app"
echo
./target/release/doorward serve --config demo/doorward.toml
