#!/usr/bin/env bash
# bench/run.sh — measure doorward against the upstream alone and against nginx
# as a plain reverse proxy, all on 127.0.0.1. A measurement, not a test: it
# always exits 0 once the run completes, and prints PASS/MISS against targets.
#
# Env knobs:
#   DOORWARD_BIN      doorward binary       (default target/release/doorward)
#   DOORWARD_THREADS  doorward worker_threads (default 1)
#   CANDIDATES        space-separated subset of
#                     "direct doorward doorward-auth doorward-auth250 nginx" (default all);
#                     doorward-auth* log in at a local oidc-provider (tests/peers/oidc,
#                     needs Node.js) and send the session cookie: a user with 2 groups,
#                     and one with 250 groups, both with signed assertions;
#                     doorward-auth-pg is doorward-auth (alice) with its store on
#                     PostgreSQL instead of SQLite (needs Debian's postgresql)
#   ROUNDS            interleaved rounds    (default 3)
#   DURATION WARMUP   wrk seconds per measurement / per warm-up (default 10 / 3)
#   THREADS CONNS     wrk -t / -c           (default 2 / 32)
#   KEEP_TMP=1        keep the temp dir (configs, logs, raw wrk output)
#
# Adding a candidate (e.g. doorward on an authenticated route): start what it
# needs in start_all, then add a branch in run_candidate that calls
#   measure NAME URL "PIDS" [extra wrk args, e.g. -H "Cookie: doorward_session=..."]
set -euo pipefail

cd "$(dirname "$0")/.."                       # repo root
BENCH=bench
DOORWARD_BIN=${DOORWARD_BIN:-target/release/doorward}
DOORWARD_THREADS=${DOORWARD_THREADS:-1}
CANDIDATES=${CANDIDATES:-"direct doorward doorward-auth doorward-auth250 nginx"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d /tmp/doorward-bench.XXXXXX)
chmod 755 "$TMP"                               # nginx workers run as nobody
mkdir -p "$TMP/www" "$TMP/tmp" "$TMP/wrk"
head -c 1024 /dev/urandom > "$TMP/www/1k.bin"
RESULTS=$TMP/results.tsv                       # round name rps p50 p99 cpu_us errors
: > "$RESULTS"
source scripts/lib/bench-tmp.sh                # STARTED, cleanup on exit, free_port

die() { echo "run.sh: $*" >&2; exit 1; }
has() { [[ " $CANDIDATES " == *" $1 "* ]]; }

# Distinct free loopback ports (sockets held open together, then released).
read -r UP_PORT DW_PORT NX_PORT DA_PORT IDP_PORT DP_PORT < <(python3 - <<'EOF'
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))
EOF
)

# render TEMPLATE OUT PORT: fill the @...@ placeholders of a bench/ template.
render() {
    sed -e "s|@TMP@|$TMP|g" -e "s|@PORT@|$3|g" -e "s|@UPSTREAM_PORT@|$UP_PORT|g" \
        -e "s|@THREADS@|$DOORWARD_THREADS|g" -e "s|@IDP_PORT@|$IDP_PORT|g" "$BENCH/$1" > "$TMP/$2"
}

# wait_http URL [PID]: until URL answers 200 (max 30 s; fails early if PID exits).
wait_http() {
    local i
    for i in $(seq 150); do
        [[ -z ${2:-} ]] || kill -0 "$2" 2>/dev/null || return 1
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1") == 200 ]] && return 0
        sleep 0.2
    done
    return 1
}

# start_nginx NAME TEMPLATE PORT: nginx in the foreground of a background job.
start_nginx() {
    render "$2" "$1.conf" "$3"
    nginx -p "$TMP" -c "$TMP/$1.conf" -g 'daemon off;' 2> "$TMP/$1.stderr" &
    STARTED+=($!); eval "${1^^}_PID=$!"
    wait_http "http://127.0.0.1:$3/1k.bin" $! || { cat "$TMP/$1.stderr" "$TMP/$1-error.log" >&2 || true; die "$1 nginx did not start"; }
}

start_doorward() {
    [[ -x $DOORWARD_BIN ]] || die "no doorward binary at $DOORWARD_BIN (cargo build --release, or CANDIDATES=\"direct nginx\")"
    render doorward.toml.in doorward.toml "$DW_PORT"
    "$DOORWARD_BIN" serve --config "$TMP/doorward.toml" > "$TMP/doorward.log" 2>&1 &
    DOORWARD_PID=$!; STARTED+=($!)
    wait_http "http://127.0.0.1:$DW_PORT/_doorward/healthz" "$DOORWARD_PID" || { tail -20 "$TMP/doorward.log" >&2; die "doorward healthz never answered 200 (doorward log tail above)"; }
    wait_http "http://127.0.0.1:$DW_PORT/1k.bin" || die "doorward does not proxy /1k.bin"
}

source scripts/lib/postgres.sh

# doorward on a protected route, its IdP, and two logged-in users' cookies.
start_doorward_auth() {
    local peer=tests/peers/oidc groups
    scripts/ensure-oidc-peer.sh
    groups=$(python3 -c 'import json; print(json.dumps(["team-%03d" % i for i in range(250)]))')
    OIDC_PORT=$IDP_PORT OIDC_ACCESS_TOKEN_TTL=3600 \
    OIDC_CLIENTS="[{\"client_id\":\"doorward-bench\",\"client_secret\":\"bench-secret\",\"redirect_uris\":[\"http://127.0.0.1:$DA_PORT/_doorward/callback\",\"http://127.0.0.1:$DP_PORT/_doorward/callback\"]}]" \
    OIDC_ACCOUNTS="{\"alice\":{\"email\":\"alice@example.com\",\"groups\":[\"engineers\",\"staff\"]},\"big\":{\"email\":\"big@example.com\",\"groups\":$groups}}" \
        node "$peer/server.mjs" > "$TMP/idp.out" 2> "$TMP/idp.log" &
    STARTED+=($!)
    wait_http "http://127.0.0.1:$IDP_PORT/.well-known/openid-configuration" $! || die "the bench IdP did not start"
    render doorward-auth.toml.in doorward-auth.toml "$DA_PORT"
    "$DOORWARD_BIN" serve --config "$TMP/doorward-auth.toml" > "$TMP/doorward-auth.log" 2>&1 &
    DOORWARD_AUTH_PID=$!; STARTED+=($!)
    wait_http "http://127.0.0.1:$DA_PORT/_doorward/healthz" "$DOORWARD_AUTH_PID" || { tail -20 "$TMP/doorward-auth.log" >&2; die "doorward (auth) did not start"; }
    COOKIE_ALICE=$(python3 "$BENCH/login.py" "http://127.0.0.1:$DA_PORT/1k.bin" alice) || die "login as alice failed"
    COOKIE_BIG=$(python3 "$BENCH/login.py" "http://127.0.0.1:$DA_PORT/1k.bin" big) || die "login as big failed"
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE_BIG" "http://127.0.0.1:$DA_PORT/1k.bin") == 200 ]] \
        || die "the session cookie does not authenticate"
}

# The same protected route with its store on PostgreSQL, and alice's cookie
# there: sessions are read from the cache once warm, so this should match
# doorward-auth.
start_doorward_auth_pg() {
    start_postgres "$TMP/pg" bench-db-password
    render doorward-auth.toml.in doorward-auth-pg.toml "$DP_PORT"
    sed -i -e "s|^url = \"sqlite://.*|url = \"postgres://doorward@127.0.0.1:$PG_PORT/doorward\"\npassword = \"bench-db-password\"|" \
        "$TMP/doorward-auth-pg.toml"
    "$DOORWARD_BIN" serve --config "$TMP/doorward-auth-pg.toml" > "$TMP/doorward-auth-pg.log" 2>&1 &
    DOORWARD_PG_PID=$!; STARTED+=($!)
    wait_http "http://127.0.0.1:$DP_PORT/_doorward/healthz" "$DOORWARD_PG_PID" || { tail -20 "$TMP/doorward-auth-pg.log" >&2; die "doorward (postgres) did not start"; }
    COOKIE_ALICE_PG=$(python3 "$BENCH/login.py" "http://127.0.0.1:$DP_PORT/1k.bin" alice) || die "login as alice (postgres) failed"
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE_ALICE_PG" "http://127.0.0.1:$DP_PORT/1k.bin") == 200 ]] \
        || die "the session cookie does not authenticate (postgres)"
}

start_all() {
    start_nginx upstream nginx-upstream.conf.in "$UP_PORT"   # always needed
    if has nginx; then start_nginx proxy nginx-proxy.conf.in "$NX_PORT"; fi
    if has doorward; then
        start_doorward; sleep 1
        RSS_IDLE_KB=$(rss_kb "$DOORWARD_PID")
    fi
    if has doorward-auth || has doorward-auth250 || has doorward-auth-pg; then start_doorward_auth; fi
    if has doorward-auth-pg; then start_doorward_auth_pg; fi
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# cpu_ticks PID...: utime+stime of each PID and its children (nginx workers).
cpu_ticks() {
    local p all=()
    for p in "$@"; do all+=("$p" $(pgrep -P "$p" || true)); done
    # fields 14,15 of /proc/PID/stat, counted after the ")" closing comm
    for p in "${all[@]}"; do sed 's/^.*) //' "/proc/$p/stat"; done | awk '{t += $12 + $13} END {print t + 0}'
}

# measure NAME URL "PIDS" [extra wrk args]: warm-up, then one timed wrk run;
# appends a line to $RESULTS. PIDS are the processes whose CPU is charged.
measure() {
    local name=$1 url=$2 pids=$3; shift 3
    local out="$TMP/wrk/r$ROUND-$name.txt" t0 t1
    timeout $((WARMUP + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "$@" "$url" > /dev/null
    t0=$(cpu_ticks $pids)
    timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url" > "$out"
    t1=$(cpu_ticks $pids)
    awk -v round="$ROUND" -v name="$name" -v ticks=$((t1 - t0)) -v hz="$CLK_TCK" '
        function ms(v) {                          # "812.00us" / "1.20ms" / "2.00s" -> ms
            if (v ~ /us$/) return v * 0.001
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/)  return v * 60000
            return v * 1000                       # seconds
        }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        / requests in / { n = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx|Socket errors/ { err = err $0 ";" }
        END {
            if (!n) { print "no wrk result for " name > "/dev/stderr"; exit 1 }
            gsub(/  +/, " ", err)
            printf "%s\t%s\t%.0f\t%.3f\t%.3f\t%.2f\t%s\n", round, name, rps, p50, p99, ticks * 1e6 / hz / n, (err ? err : "-")
        }' "$out" >> "$RESULTS"
    tail -1 "$RESULTS" | awk -F'\t' '{printf "  %-16s %9s req/s  p50 %7s ms  p99 %7s ms  cpu %7s us/req  errors %s\n", $2, $3, $4, $5, $6, $7}'
}

run_candidate() {
    case $1 in
        direct)   measure direct   "http://127.0.0.1:$UP_PORT/1k.bin" "$UPSTREAM_PID" ;;
        doorward) measure doorward "http://127.0.0.1:$DW_PORT/1k.bin" "$DOORWARD_PID" ;;
        doorward-auth) measure doorward-auth "http://127.0.0.1:$DA_PORT/1k.bin" "$DOORWARD_AUTH_PID" -H "Cookie: $COOKIE_ALICE" ;;
        doorward-auth250) measure doorward-auth250 "http://127.0.0.1:$DA_PORT/1k.bin" "$DOORWARD_AUTH_PID" -H "Cookie: $COOKIE_BIG" ;;
        doorward-auth-pg) measure doorward-auth-pg "http://127.0.0.1:$DP_PORT/1k.bin" "$DOORWARD_PG_PID" -H "Cookie: $COOKIE_ALICE_PG" ;;
        nginx)    measure nginx    "http://127.0.0.1:$NX_PORT/1k.bin" "$PROXY_PID" ;;
        *) die "unknown candidate $1" ;;
    esac
}

# ---- run ------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "doorward bench: candidates [$CANDIDATES], $ROUNDS rounds, wrk -t$THREADS -c$CONNS -d${DURATION}s (+${WARMUP}s warm-up)"
echo "machine: $(nproc) cores, load avg $LOAD_BEFORE; doorward worker_threads=$DOORWARD_THREADS"
if awk -v l="${LOAD_BEFORE%% *}" 'BEGIN {exit !(l > 1.5)}'; then
    echo "WARNING: 1-min load ${LOAD_BEFORE%% *} > 1.5, numbers will be noisy" >&2
fi
start_all
for ROUND in $(seq "$ROUNDS"); do
    echo "round $ROUND"
    for c in $CANDIDATES; do run_candidate "$c"; done
done
RSS_AFTER_KB=$(if has doorward; then rss_kb "$DOORWARD_PID"; fi)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report: medians, ratios, targets; markdown copy in bench/results/ -----
mkdir -p "$BENCH/results"
python3 - "$RESULTS" "${RSS_IDLE_KB:-}" "$RSS_AFTER_KB" "$BENCH/results/latest.md" <<EOF
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
rss_idle, rss_after, md_path = sys.argv[2], sys.argv[3], sys.argv[4]
names = list(dict.fromkeys(r[1] for r in rows))
med = {n: [st.median(float(r[i]) for r in rows if r[1] == n) for i in (2, 3, 4, 5)] for n in names}
hdr = "| candidate | req/s | p50 ms | p99 ms | CPU µs/req |\n|---|---:|---:|---:|---:|"
table = [hdr] + [f"| {n} | {m[0]:.0f} | {m[1]:.3f} | {m[2]:.3f} | {m[3]:.2f} |" for n, m in med.items()]
def line(what, ratio, ok, stretch, target):
    return f"| {what} | {ratio} | {target} | {'PASS' if ok else 'MISS'} | {stretch} |"
checks = []
for n in [n for n in names if n.startswith("doorward")] if "nginx" in med else []:
    d, x = med[n], med["nginx"]   # every doorward* candidate vs the nginx proxy
    tp, cpu, p99 = d[0] / x[0], d[3] / x[3], d[2] / x[2]
    if n.startswith("doorward-auth"):
        # Authenticated requests: >= 0.75x nginx, and within 10% of
        # doorward's own public route in the same run.
        checks += [line(f"throughput {n}/nginx", f"{tp:.2f}x", tp >= 0.75, "", ">= 0.75x")]
        if n == "doorward-auth-pg" and "doorward-auth" in med:
            pg = d[0] / med["doorward-auth"][0]
            checks += [line("throughput doorward-auth-pg/doorward-auth (SQLite)", f"{pg:.2f}x", pg >= 0.95, "", ">= 0.95x")]
        if "doorward" in med:
            own = d[0] / med["doorward"][0]
            checks += [line(f"throughput {n}/doorward public", f"{own:.2f}x", own >= 0.9, "", ">= 0.9x")]
        continue
    checks += [
        line(f"throughput {n}/nginx", f"{tp:.2f}x", tp >= 0.8, "PASS" if tp >= 0.9 else "MISS", ">= 0.8x (stretch 0.9x)"),
        line(f"CPU/req {n}/nginx", f"{cpu:.2f}x", cpu <= 1.3, "PASS" if cpu <= 1.05 else "MISS", "<= 1.3x (stretch 1.05x)"),
        line(f"p99 {n}/nginx", f"{p99:.2f}x", p99 <= 3, "", "<= 3x")]
if rss_idle:
    mb = int(rss_idle) / 1024
    checks += [line("doorward RSS idle", f"{mb:.1f} MB", mb < 30, "", "< 30 MB")]
if checks:
    checks = ["| metric | value | target | result | stretch |", "|---|---:|---|---|---|"] + checks
if rss_idle:
    checks += ["", f"doorward RSS after run: {int(rss_after) / 1024:.1f} MB"]
per_round = ["| round | candidate | req/s | p50 ms | p99 ms | CPU µs/req | errors |", "|---|---|---:|---:|---:|---:|---|"]
per_round += ["| " + " | ".join(r) + " |" for r in rows]
setup = ("wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, ${WARMUP}s warm-up, $ROUNDS interleaved rounds, "
         "1 KiB static file from nginx (1 worker); nginx proxy 1 worker, upstream keepalive 64; "
         "doorward worker_threads=$DOORWARD_THREADS (git $(git describe --always --dirty 2>/dev/null || echo none)); $(nproc) cores, load avg before $LOAD_BEFORE, after $LOAD_AFTER. "
         "CPU/req counts the proxy process only (for direct: the upstream nginx).")
md = "\n".join(["## Benchmark (medians)", "", setup, "", *table, "", *checks, "",
                "<details><summary>per round</summary>", "", *per_round, "", "</details>", ""])
print("\nper round:"); print("\n".join(per_round))
print("\nmedians:"); print("\n".join(table)); print()
print("\n".join(checks) if checks else "(ratios and targets need both doorward and nginx in CANDIDATES)")
open(md_path, "w").write(md)
print(f"\nwritten {md_path}")
EOF
