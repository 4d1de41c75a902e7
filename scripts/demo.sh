#!/usr/bin/env bash
# The demo: a local identity provider, a sample app on :3000 that shows the
# headers it gets, and doorward on http://127.0.0.1:4180 in front of it.
# Ctrl-C stops all.
#
#   scripts/demo.sh          OpenID Connect (oidc-provider on :4181)
#   scripts/demo.sh --saml   SAML 2.0 (pysaml2's IdP on :4182)
#
# Users alice and bob, any password. Needs a Rust toolchain; the rest
# (libxmlsec1 and libclang for the build, Node.js and npm, Python 3, the
# xmlsec1 command for --saml) is installed from Debian when missing, by
# scripts/install-system-packages.sh (with sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
protocol=oidc
[ "${1:-}" = "--saml" ] && protocol=saml
scripts/install-system-packages.sh
cargo build --release --locked
mkdir -p target/demo

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

wait_for() {
  for _ in $(seq 100); do
    python3 -c "import urllib.request; urllib.request.urlopen('$1')" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the identity provider did not start: $1" >&2
  exit 1
}

if [ "$protocol" = oidc ]; then
  scripts/ensure-oidc-peer.sh
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
  wait_for http://127.0.0.1:4181/.well-known/openid-configuration
  config=demo/doorward.toml
else
  pyenv=target/pyenv-demo
  if [ ! -x "$pyenv/bin/python" ] || [ tests/peers/saml/requirements.txt -nt "$pyenv/installed" ]; then
    python3 -m venv --clear "$pyenv"
    "$pyenv/bin/pip" install --quiet --disable-pip-version-check -r tests/peers/saml/requirements.txt
    touch "$pyenv/installed"
  fi
  SAML_PORT=4182 \
  SAML_SP_METADATA='{"entity_id":"http://127.0.0.1:4180/_doorward/saml/metadata",
    "acs_url":"http://127.0.0.1:4180/_doorward/saml/acs","slo_url":"http://127.0.0.1:4180/_doorward/saml/slo",
    "authn_requests_signed":false}' \
  SAML_USERS='{"alice":{"name_id":"alice@example.com","name_id_format":"email",
      "attributes":{"mail":["alice@example.com"],"uid":["alice"],"memberOf":["engineers","staff"]}},
    "bob":{"name_id":"bob@example.com","name_id_format":"email",
      "attributes":{"mail":["bob@example.com"],"uid":["bob"],"memberOf":["Marketing Team"]}}}' \
    "$pyenv/bin/python" tests/peers/saml/idp.py </dev/null >/dev/null 2>&1 &
  pids+=($!)
  wait_for http://127.0.0.1:4182/metadata
  config=demo/doorward-saml.toml
fi
python3 demo/app.py 3000 &
pids+=($!)

cat <<MSG

  doorward demo ($protocol)
  -------------------
  Open http://127.0.0.1:4180/ and sign in as "alice" or "bob" (any password).
  The sample app shows the identity headers doorward sends it.
  Sign out:   http://127.0.0.1:4180/_doorward/logout
  Who am I:   http://127.0.0.1:4180/_doorward/userinfo
  Spoofing:   curl -H 'X-Forwarded-User: mallory' http://127.0.0.1:4180/public/
              (the app never sees mallory)

MSG
./target/release/doorward serve --config "$config"
