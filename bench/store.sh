#!/usr/bin/env bash
# bench/store.sh — the session store on each backend, all on 127.0.0.1:
# 100,000 sessions created one after another (the store's part of a login),
# then every one looked up by its cookie from a cold cache (a restarted
# replica), then again warm. Runs examples/bench_internals against SQLite
# and against a fresh PostgreSQL. A measurement: exits 0 once it ran.
#
# Env knobs:
#   BACKENDS          "sqlite postgres" or a subset (default both)
#   BENCH_INTERNALS   a prebuilt bench_internals (default: cargo build --release)
#   KEEP_TMP=1        keep the temp dir (PostgreSQL data and log)
set -euo pipefail
cd "$(dirname "$0")/.."
BACKENDS=${BACKENDS:-"sqlite postgres"}
if [[ -z ${BENCH_INTERNALS:-} ]]; then
    cargo build --release --locked --example bench_internals >&2
    BENCH_INTERNALS=${CARGO_TARGET_DIR:-target}/release/examples/bench_internals
fi

TMP=$(mktemp -d "$PWD/target/bench-store.XXXXXX")
chmod 755 "$TMP"
source scripts/lib/bench-tmp.sh                # STARTED, cleanup on exit, free_port
source scripts/lib/postgres.sh

for backend in $BACKENDS; do
    echo "== $backend"
    case $backend in
        sqlite) "$BENCH_INTERNALS" sessions ;;
        postgres)
            start_postgres "$TMP/pg" bench-db-password
            STORE_URL="postgres://doorward@127.0.0.1:$PG_PORT/doorward" STORE_PASSWORD=bench-db-password \
                "$BENCH_INTERNALS" sessions ;;
        *) echo "unknown backend $backend" >&2; exit 1 ;;
    esac
done
