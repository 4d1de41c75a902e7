#!/usr/bin/env bash
# The demo: a local OpenID provider (oidc-provider on :4181, users alice and
# bob, any password), a sample app on :3000 that shows the headers it gets,
# and doorward on http://127.0.0.1:4180 in front of it. Ctrl-C stops all.
# Needs a Rust toolchain, Node.js 18+ (npm) and Python 3.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-oidc-peer.sh
cargo build --release --locked
mkdir -p target/demo

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

OIDC_PORT=4181 \
OIDC_ACCESS_TOKEN_TTL=300 \
OIDC_CLIENTS='[{"client_id":"doorward-demo","client_secret":"demo-client-secret",
  "redirect_uris":["http://127.0.0.1:4180/_doorward/callback"],
  "post_logout_redirect_uris":["http://127.0.0.1:4180/_doorward/logged-out"],
  "backchannel_logout_uri":"http://127.0.0.1:4180/_doorward/backchannel-logout",
  "backchannel_logout_session_required":true}]' \
OIDC_ACCOUNTS='{"alice":{"email":"alice@example.com","email_verified":true,"name":"Alice","preferred_username":"alice","groups":["engineers","staff"]},
  "bob":{"email":"bob@example.com","email_verified":true,"name":"Bob","preferred_username":"bob","groups":["Marketing Team"]}}' \
  node tests/peers/oidc/server.mjs >/dev/null &
pids+=($!)
python3 demo/app.py 3000 &
pids+=($!)
# Wait for the IdP so the first login does not race it.
for _ in $(seq 50); do
  python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:4181/.well-known/openid-configuration")' 2>/dev/null && break
  sleep 0.1
done

cat <<'MSG'

  doorward demo
  -------------
  Open http://127.0.0.1:4180/ and sign in as "alice" or "bob" (any password).
  The sample app shows the identity headers doorward sends it.
  Sign out:   http://127.0.0.1:4180/_doorward/logout
  Who am I:   http://127.0.0.1:4180/_doorward/userinfo
  Spoofing:   curl -H 'X-Forwarded-User: mallory' http://127.0.0.1:4180/public/
              (the app never sees mallory)

MSG
./target/release/doorward serve --config demo/doorward.toml
