#!/usr/bin/env bash
# scripts/soak.sh — doorward under a steady mixed load for a while, sampled
# every few seconds, so a person (the plot) and a test (fitted slopes) can
# see whether anything grows.
#
# Parts, all real and on loopback: doorward (SQLite store), the test OpenID
# provider (tests/peers/oidc) with short-lived access tokens, and an nginx
# upstream serving 1 KiB. The load (scripts/soak.py) mixes logged-in
# requests, public requests, new logins, refreshes (each session refreshes
# every REFRESH_EVERY seconds), local logouts and logouts at the provider
# that reach doorward as back-channel logouts, at RATE requests/s or else
# FRACTION of a peak it measures first. It writes, into OUT/:
#   soak.csv      one row per sample: RSS, fds, threads, cached sessions,
#                 in-flight requests, rate, p50/p99, errors, churn counters
#   summary.json  least-squares slopes of RSS and fds after the warm-up,
#                 min/max, errors, what the churn did
#   soak.png      RSS, open fds and p99 over time (matplotlib)
# and exits 1 if any request failed, 2 if a process of the run (nginx, the
# provider, doorward) died under it (on a shared machine, someone's
# `pkill nginx`), which voids the run.
#
# Env knobs:
#   DOORWARD_BIN   doorward binary   (default target/release/doorward, else target/debug/doorward)
#   DURATION       seconds of load   (default 1800)
#   INTERVAL       seconds between samples (default 5)
#   WARMUP         seconds left out of the slopes (default max(30, DURATION/4))
#   RATE           requests/s (default: FRACTION x the measured peak)
#   FRACTION       (default 0.5)
#   WORKERS        client threads    (default 8)
#   REFRESH_EVERY  seconds between a session's refreshes (default 30)
#   OUT            output directory  (default soak-<date>)
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ -z ${DOORWARD_BIN:-} ]]; then
    DOORWARD_BIN=target/release/doorward
    [[ -x $DOORWARD_BIN ]] || DOORWARD_BIN=target/debug/doorward
fi
DURATION=${DURATION:-1800}
INTERVAL=${INTERVAL:-5}
FRACTION=${FRACTION:-0.5}
WORKERS=${WORKERS:-8}
REFRESH_EVERY=${REFRESH_EVERY:-30}
OUT=${OUT:-soak-$(date -u +%Y%m%dT%H%M%SZ)}

[[ -x $DOORWARD_BIN ]] || { echo "soak.sh: no doorward binary at $DOORWARD_BIN" >&2; exit 1; }
for tool in nginx node curl python3; do
    command -v "$tool" > /dev/null || { echo "soak.sh: needs $tool" >&2; exit 1; }
done
scripts/ensure-oidc-peer.sh
# matplotlib for the plot, pinned, in the venv scripts/test.sh also fills.
PY=target/pyenv/bin/python
if ! "$PY" -c 'import matplotlib' 2> /dev/null; then
    [[ -x $PY ]] || python3 -m venv target/pyenv
    target/pyenv/bin/pip install --quiet --disable-pip-version-check -r tests/peers/soak/requirements.txt
fi

TMP=$(mktemp -d /tmp/doorward-soak.XXXXXX)
chmod 755 "$TMP"
mkdir -p "$TMP/www/app" "$TMP/www/public" "$TMP/tmp"
head -c 1024 /dev/urandom > "$TMP/www/app/1k.bin"
cp "$TMP/www/app/1k.bin" "$TMP/www/public/1k.bin"
source scripts/lib/bench-tmp.sh   # STARTED, cleanup on exit (KEEP_TMP=1 keeps $TMP), free_port

UP_PORT=$(free_port)
DW_PORT=$(free_port)
BASE="http://127.0.0.1:$DW_PORT"

wait_http() {
    local i
    for i in $(seq 150); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1") == 200 ]] && return 0
        sleep 0.2
    done
    return 1
}

sed -e "s|@TMP@|$TMP|g" -e "s|@PORT@|$UP_PORT|g" -e "s|@NAME@|upstream|g" -e "s|@WORKERS@|1|g" \
    bench/nginx-upstream.conf.in > "$TMP/upstream.conf"
nginx -p "$TMP" -c "$TMP/upstream.conf" -g 'daemon off;' 2> "$TMP/upstream.stderr" &
NGINX_PID=$!
STARTED+=($!)
wait_http "http://127.0.0.1:$UP_PORT/public/1k.bin" || { echo "soak.sh: nginx did not start" >&2; exit 1; }

# The provider: ten users; access tokens live REFRESH_EVERY + 60 s and
# doorward refreshes 60 s before expiry, so every session refreshes every
# REFRESH_EVERY seconds.
accounts=$(python3 -c 'import json; print(json.dumps({f"user{i}": {"email": f"user{i}@example.com",
    "email_verified": True, "preferred_username": f"user{i}", "groups": ["staff"]} for i in range(10)}))')
clients=$(printf '[{"client_id":"doorward","client_secret":"soak-secret","redirect_uris":["%s/_doorward/callback"],
  "post_logout_redirect_uris":["%s/_doorward/logged-out"],"backchannel_logout_uri":"%s/_doorward/backchannel-logout",
  "backchannel_logout_session_required":true}]' "$BASE" "$BASE" "$BASE")
OIDC_CLIENTS=$clients OIDC_ACCOUNTS=$accounts OIDC_ACCESS_TOKEN_TTL=$((REFRESH_EVERY + 60)) \
    OIDC_ID_TOKEN_TTL=$((REFRESH_EVERY + 60)) node tests/peers/oidc/server.mjs \
    > "$TMP/idp.out" 2> "$TMP/idp.stderr" &
IDP_PID=$!
STARTED+=($!)
for _ in $(seq 150); do [[ -s $TMP/idp.out ]] && break; sleep 0.2; done
ISSUER=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["issuer"])' "$TMP/idp.out") \
    || { cat "$TMP/idp.stderr" >&2; exit 1; }

cat > "$TMP/doorward.toml" <<EOF
[server]
listen = "127.0.0.1:$DW_PORT"
public_url = "$BASE"
[log]
level = "warn"
format = "json"
access_log = false
[store]
url = "sqlite://$TMP/doorward.db"
[session]
keys = ["soak-session-key-0123456789abcdef0123456789abcdef"]
refresh_before = "60s"
[[provider]]
name = "soak-idp"
kind = "oidc"
issuer = "$ISSUER"
client_id = "doorward"
client_secret = "soak-secret"
scopes = ["openid", "email", "profile", "groups"]
[[route]]
name = "app"
upstream = "http://127.0.0.1:$UP_PORT"
public = ["/public/"]
EOF
"$DOORWARD_BIN" serve --config "$TMP/doorward.toml" > "$TMP/doorward.log" 2>&1 &
DOORWARD_PID=$!
STARTED+=($!)
wait_http "$BASE/public/1k.bin" || { tail -20 "$TMP/doorward.log" >&2; exit 1; }

mkdir -p "$OUT"
status=0
"$PY" scripts/soak.py --base "$BASE" --issuer "$ISSUER" --pid "$DOORWARD_PID" --duration "$DURATION" \
    --interval "$INTERVAL" ${WARMUP:+--warmup "$WARMUP"} ${RATE:+--rate "$RATE"} --fraction "$FRACTION" \
    --workers "$WORKERS" --out "$OUT" --watch "nginx=$NGINX_PID" --watch "idp=$IDP_PID" || status=$?
if grep -q '"level":"ERROR"' "$TMP/doorward.log"; then
    echo "soak.sh: doorward logged errors:" >&2
    grep '"level":"ERROR"' "$TMP/doorward.log" | tail -5 >&2
    status=1
fi
cp "$TMP/doorward.log" "$OUT/doorward.log"
echo "soak: $OUT/soak.csv $OUT/summary.json $OUT/soak.png"
exit "$status"
