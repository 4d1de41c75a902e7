#!/usr/bin/env bash
# bench/scim.sh — SCIM provisioning speed, on SQLite and on PostgreSQL, all
# on 127.0.0.1. A measurement, not a test: it exits 0 once the run
# completes and prints PASS/MISS against the targets:
#   - 10,000 users provisioned by sequential POSTs (one keep-alive
#     connection, as an IdP's first sync): under 20 s;
#   - `filter=userName eq "..."` at 10,000 users: p99 under 2 ms.
# The client is examples/bench_scim.rs; doorward is the release binary.
#
# Env knobs:
#   DOORWARD_BIN   doorward binary              (default target/release/doorward)
#   BACKENDS       "sqlite postgres" or a subset (default both)
#   USERS LOOKUPS  users to provision / lookups  (default 10000 / 2000)
#   BENCH_SCIM     a prebuilt client (skips the cargo build)
#   KEEP_TMP=1     keep the temp dir (configs, logs, databases)
# PostgreSQL runs from Debian's server binaries (apt-get install postgresql),
# with its defaults (fsync and synchronous_commit on), data on the disk.
set -euo pipefail

cd "$(dirname "$0")/.."
DOORWARD_BIN=${DOORWARD_BIN:-target/release/doorward}
BACKENDS=${BACKENDS:-"sqlite postgres"}
USERS=${USERS:-10000}
LOOKUPS=${LOOKUPS:-2000}
TOKEN=bench-scim-token-0123456789abcdef0123456789
TARGET_PROVISION_S=20
TARGET_FILTER_P99_MS=2

if [[ -n ${BENCH_SCIM:-} ]]; then
    CLIENT=$BENCH_SCIM                       # prebuilt: DOORWARD_BIN is taken as given
else
    cargo build --release --locked --bin doorward --example bench_scim >&2
    CLIENT=${CARGO_TARGET_DIR:-target}/release/examples/bench_scim
    [[ $DOORWARD_BIN == target/release/doorward && -n ${CARGO_TARGET_DIR:-} ]] && DOORWARD_BIN=$CARGO_TARGET_DIR/release/doorward
fi

TMP=$(mktemp -d "$PWD/target/bench-scim.XXXXXX")
chmod 755 "$TMP"
source scripts/lib/bench-tmp.sh                # STARTED, cleanup on exit, free_port

source scripts/lib/postgres.sh

# run_backend NAME STORE_LINES: doorward on that store, then the client.
run_backend() {
    local name=$1 store=$2 port pid
    port=$(free_port)
    cat > "$TMP/$name.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
public_url = "http://127.0.0.1:$port"
[log]
level = "error"
access_log = false
[store]
$store
[session]
keys = ["bench-session-key-0123456789abcdef0123456789"]
# Never reached: SCIM needs a provider, the benchmark logs nobody in.
[[provider]]
name = "idp"
kind = "oidc"
issuer = "http://127.0.0.1:9/"
client_id = "bench"
client_secret = "bench"
[[route]]
name = "app"
upstream = "http://127.0.0.1:9"
[scim]
enabled = true
bearer_token = "$TOKEN"
EOF
    "$DOORWARD_BIN" serve --config "$TMP/$name.toml" >"$TMP/$name.log" 2>&1 &
    pid=$!
    STARTED+=("$pid")
    for _ in $(seq 150); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/_doorward/healthz") == 200 ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.log" >&2; exit 1; }
        sleep 0.2
    done
    "$CLIENT" "http://127.0.0.1:$port/_doorward/scim/v2" "$TOKEN" "$USERS" "$LOOKUPS" > "$TMP/$name.out"
    kill -TERM "$pid" 2>/dev/null || true
    report "$name" "$TMP/$name.out"
}

report() {
    local name=$1 out=$2 provision p99 verdict_p verdict_f
    provision=$(sed -n 's/^provision_seconds=//p' "$out")
    p99=$(sed -n 's/^filter_p99_ms=//p' "$out")
    verdict_p=$(awk -v v="$provision" -v t="$TARGET_PROVISION_S" 'BEGIN { print (v < t) ? "PASS" : "MISS" }')
    verdict_f=$(awk -v v="$p99" -v t="$TARGET_FILTER_P99_MS" 'BEGIN { print (v < t) ? "PASS" : "MISS" }')
    printf '%-9s %s users by sequential POST: %6ss (POST p50 %s ms, p99 %s ms)   target < %ss: %s\n' \
        "$name" "$USERS" "$provision" "$(sed -n 's/^post_p50_ms=//p' "$out")" "$(sed -n 's/^post_p99_ms=//p' "$out")" \
        "$TARGET_PROVISION_S" "$verdict_p"
    printf '%-9s userName eq lookup at %s users: p50 %s ms, p99 %s ms, max %s ms   target p99 < %s ms: %s\n' \
        "$name" "$USERS" "$(sed -n 's/^filter_p50_ms=//p' "$out")" "$p99" "$(sed -n 's/^filter_max_ms=//p' "$out")" \
        "$TARGET_FILTER_P99_MS" "$verdict_f"
}

for backend in $BACKENDS; do
    case $backend in
        sqlite) run_backend sqlite "url = \"sqlite://$TMP/doorward.db\"" ;;
        postgres)
            start_postgres "$TMP/pg" bench-db-password
            run_backend postgres "url = \"postgres://doorward@127.0.0.1:$PG_PORT/doorward\"
password = \"bench-db-password\"" ;;
        *) echo "unknown backend $backend" >&2; exit 1 ;;
    esac
done
