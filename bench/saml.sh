#!/usr/bin/env bash
# bench/saml.sh — ACS validations per second per core, on real signed
# responses from the pysaml2 test IdP (assertion signed, and both the
# Response and the Assertion signed). A measurement: exits 0 once it ran.
# Needs the test venv (scripts/test.sh makes target/pyenv) and xmlsec1.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
python=target/pyenv/bin/python
[ -x "$python" ] || { echo "run scripts/test.sh once first (it makes $python)"; exit 1; }
# BENCH_SAML: a prebuilt bench_saml (skips the cargo build).
if [[ -z ${BENCH_SAML:-} ]]; then
  cargo build --release --locked --example bench_saml
  BENCH_SAML=${CARGO_TARGET_DIR:-target}/release/examples/bench_saml
fi
tmp=$(mktemp -d)
coproc IDP { SAML_SP_METADATA='{"entity_id":"http://127.0.0.1:9/_doorward/saml/metadata","acs_url":"http://127.0.0.1:9/_doorward/saml/acs"}' \
  SAML_USERS='{"alice":{"name_id":"alice@example.com","attributes":{"mail":["alice@example.com"],"memberOf":["engineers","staff"]}}}' \
  "$python" tests/peers/saml/idp.py 2>/dev/null; }
trap 'kill $IDP_PID 2>/dev/null; rm -rf "$tmp"' EXIT
read -r line <&"${IDP[0]}"
base=$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["base"])' "$line")
fetch() { "$python" -c '
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode() if len(sys.argv) > 2 else None,
                                 headers={"Accept": "application/json", "Content-Type": "application/json"})
body = urllib.request.urlopen(request).read().decode()
print(json.loads(body)["fields"]["SAMLResponse"] if "unsolicited" in sys.argv[1] else body)' "$@"; }
fetch "$base/metadata" > "$tmp/idp.xml"
sp="http%3A%2F%2F127.0.0.1%3A9%2F_doorward%2Fsaml%2Fmetadata"
for sign in assertion both; do
  fetch "$base/__test/options" "{\"sign\": \"$sign\"}" >/dev/null
  fetch "$base/__test/unsolicited?user=alice&sp=$sp" > "$tmp/response-$sign.b64"
  printf '%-10s ' "$sign:"
  "$BENCH_SAML" "$tmp/idp.xml" "$tmp/response-$sign.b64" "$SECONDS_PER_RUN"
done
