#!/usr/bin/env bash
# bench/run.sh — measure doorward against the upstream alone, nginx as a
# plain reverse proxy and Apache httpd + mod_auth_openidc, all on 127.0.0.1.
# A measurement, not a test: it exits 0 once the run completes, and prints
# PASS/MISS against the targets of issue 12.
#
# Two pairs, each compared within itself:
#   defaults  nginx-auto (worker_processes auto) vs doorward as shipped
#             (worker_threads not set): doorward, doorward-auth, doorward-auth250
#   one       nginx-1 (worker_processes 1) vs doorward worker_threads = 1:
#             doorward-1t, doorward-auth-1t, doorward-auth250-1t
# doorward is a public route; doorward-auth* are logged in at a local
# oidc-provider (tests/peers/oidc, needs Node.js) with a session cookie and a
# signed assertion, as alice (2 groups) and big (250 groups). Other candidates:
#   direct            the upstream alone (nginx, 1 KiB file, one worker per core)
#   doorward-auth-shared  doorward-auth (alice) on tokio's work-stealing runtime
#                     (runtime = "shared") instead of the per-core default
#   doorward-auth-traced  doorward-auth (alice) with [traces] on, every request
#                     sampled and exported (to the upstream nginx, which takes them)
#   doorward-auth-pg  doorward-auth (alice) with its store on PostgreSQL
#                     (needs Debian's postgresql)
#   modauth modauth250  Apache event MPM + mod_auth_openidc at the same OP,
#                     alice / big (needs apache2, libapache2-mod-auth-openidc)
# After the wrk rounds, nginx-auto and doorward-auth are driven by oha at
# constant rates (latency as users feel it), in interleaved rounds.
#
# Env knobs:
#   DOORWARD_BIN   doorward binary (default target/release/doorward; with PERF=1
#                  target/profiling/doorward, from `cargo build --profile profiling`)
#   PAIRS          "defaults one" (default both), or one of them
#   CANDIDATES     space-separated subset of the names above (default: the
#                  pairs' candidates, then direct doorward-auth-pg modauth modauth250)
#   ROUNDS         interleaved rounds (default 3)
#   DURATION WARMUP  wrk seconds per measurement / per warm-up (default 10 / 3)
#   THREADS CONNS  wrk -t / -c, also oha -c (default 2 / 32)
#   OHA            oha binary (default: oha on PATH, else target/tools/bin/oha);
#                  without it the latency-at-rate runs are skipped, and said so
#   RATES          constant rates for the oha runs, req/s (default "5000 10000 15000":
#                  issue 22's table; both nginx and doorward must hold a rate for its
#                  p99 ratio to count)
#   RATE_CANDIDATES  who is driven at those rates (default "nginx-auto doorward-auth";
#                  add doorward-auth-shared to compare the runtime shapes)
#   RATE_ROUNDS    interleaved rounds at each rate (default 3)
#   RATE_DURATION  oha seconds per run (default 15)
#   IDLE=0         skip the idle keep-alive row (bench/idle.py: its own nginx
#                  upstream, nginx proxy and doorward; IDLE_N connections, default 2000)
#   PLOT=0         no PNG (otherwise matplotlib, pinned in bench/requirements.txt,
#                  is installed into target/bench-venv on first use)
#   KEEP_TMP=1     keep the temp dir (configs, logs, raw wrk and oha output)
#   HOLD=1         start the candidates, write name, URL, PIDs and cookie to
#                  $TMP/hold.tsv, and wait (no rounds): for perf, oha by hand
#   PERF=1         after the rounds, profile doorward under load with perf and
#                  write flame graphs (bench/lib/perf.sh: PERF_FREQ, PERF_CANDIDATES)
#
# Output: the table on stdout, and bench/results/latest.{md,png,tsv},
# latest-rate.tsv, latest-meta.tsv (the raw numbers).
#
# Adding a candidate: start what it needs in bench/lib/candidates.sh and
# `register` it (name, pair, role, URL, PIDs charged, worker setting, cookie).
set -euo pipefail

cd "$(dirname "$0")/.."                       # repo root
BENCH=bench
# Flame graphs need line tables, which the release profile strips: PERF=1
# runs the profiling build (the same code and optimisation, symbols kept).
if [ "${PERF:-0}" = 1 ]; then
  DOORWARD_BIN=${DOORWARD_BIN:-target/profiling/doorward}
else
  DOORWARD_BIN=${DOORWARD_BIN:-target/release/doorward}
fi
PAIRS=${PAIRS:-"defaults one"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
RATES=${RATES:-"5000 10000 15000"}
RATE_CANDIDATES=${RATE_CANDIDATES:-"nginx-auto doorward-auth"}
RATE_ROUNDS=${RATE_ROUNDS:-3}
RATE_DURATION=${RATE_DURATION:-15}
PLOT=${PLOT:-1}
CLK_TCK=$(getconf CLK_TCK)
OHA=${OHA:-$(command -v oha || echo target/tools/bin/oha)}
# The commit of these scripts, taken before this run rewrites bench/results/
# (tracked files; their changes do not make the scripts "dirty").
GIT_REV=$(git rev-parse --short HEAD 2>/dev/null || echo none)
git diff --quiet HEAD -- . ':!bench/results' 2>/dev/null || GIT_REV+=-dirty
# The shipped default of [server] worker_threads, for the report's label.
SHIPPED_THREADS=$(grep -oP '^\s*worker_threads: \K\d+' src/config/mod.rs | head -1 || true)

pair_candidates() {
    local p
    for p in $PAIRS; do
        case $p in
            defaults) echo nginx-auto doorward doorward-auth doorward-auth250 ;;
            one)      echo nginx-1 doorward-1t doorward-auth-1t doorward-auth250-1t ;;
            *) echo "run.sh: unknown pair $p (PAIRS takes defaults, one)" >&2; exit 1 ;;
        esac
    done
}
CANDIDATES=${CANDIDATES:-"$(pair_candidates | xargs) direct doorward-auth-shared doorward-auth-pg modauth modauth250"}

TMP=$(mktemp -d /tmp/doorward-bench.XXXXXX)
chmod 755 "$TMP"                               # nginx and Apache workers run as nobody
mkdir -p "$TMP/www" "$TMP/tmp" "$TMP/wrk"
head -c 1024 /dev/urandom > "$TMP/www/1k.bin"
RESULTS=$TMP/results.tsv                       # round name rps p50 p99 cpu_us errors load1
RATE_RESULTS=$TMP/rate.tsv                     # round name rate achieved p50 p99 p99.9 cpu_us errors load1
META=$TMP/meta.tsv                             # name pair role setting
RSS=$TMP/rss.tsv                               # name when rss_kb
: > "$RESULTS"; : > "$RATE_RESULTS"; : > "$META"; : > "$RSS"
RSS_PIDS=()
source scripts/lib/bench-tmp.sh                # STARTED, cleanup on exit, free_port(s)
source scripts/lib/postgres.sh
source "$BENCH/lib/common.sh"
source "$BENCH/lib/candidates.sh"
source "$BENCH/lib/perf.sh"

has() { [[ " $CANDIDATES " == *" $1 "* ]]; }
has_any() { local c; for c in "$@"; do has "$c" && return 0; done; return 1; }

read -r UP_PORT IDP_PORT NXA_PORT NX1_PORT DW_PORT DW1_PORT DA_PORT DA1_PORT DP_PORT MA_PORT DS_PORT DT_PORT < <(free_ports 12)

start_all() {
    start_upstream                                              # always needed
    if has_any doorward-auth doorward-auth250 doorward-auth-1t doorward-auth250-1t doorward-auth-pg doorward-auth-shared doorward-auth-traced modauth modauth250; then
        start_idp
    fi
    local p
    for p in $PAIRS; do start_pair "$p"; done
    if has doorward-auth-pg; then start_doorward_auth_pg; fi
    if has doorward-auth-shared; then start_doorward_auth_shared; fi
    if has doorward-auth-traced; then start_doorward_auth_traced; fi
    if has_any modauth modauth250; then start_modauth; fi
    local c
    for c in $CANDIDATES; do [[ -n ${URL[$c]:-} ]] || die "unknown candidate $c, or not in PAIRS"; done
}

# ---- run ------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "doorward bench: pairs [$PAIRS], candidates [$CANDIDATES]"
echo "  $ROUNDS rounds, wrk -t$THREADS -c$CONNS -d${DURATION}s (+${WARMUP}s warm-up); $(nproc) cores, load avg $LOAD_BEFORE"
if awk -v l="${LOAD_BEFORE%% *}" 'BEGIN {exit !(l > 1.5)}'; then
    echo "WARNING: 1-min load ${LOAD_BEFORE%% *} > 1.5, numbers will be noisy" >&2
fi
start_all
remember_started
awk -F'\t' '{printf "  %-20s %-9s %s\n", $1, $2, $4}' "$META"
if [[ ${HOLD:-0} == 1 ]]; then
    for c in $CANDIDATES; do printf '%s\t%s\t%s\t%s\n' "$c" "${URL[$c]}" "${CHARGE[$c]}" "${COOKIE[$c]:-}"; done > "$TMP/hold.tsv"
    echo "HOLD=1: candidates up (name, URL, PIDs, cookie in $TMP/hold.tsv); stop with Ctrl-C or kill $$"
    while :; do sleep 3600 & wait $!; done     # wait: a signal ends it at once
fi
for ROUND in $(seq "$ROUNDS"); do
    echo "round $ROUND"
    for c in $CANDIDATES; do measure "$c"; done
done
perf_profiles

# Latency at a constant rate: each rate, each candidate, interleaved rounds
# (the machine drifts; a round compares candidates under the same drift).
RATE_NOTE=
if [[ -z $RATES ]]; then
    RATE_NOTE="latency at rate: skipped (RATES is empty)"
elif [[ ! -x $OHA ]]; then
    RATE_NOTE="latency at rate: SKIPPED, oha not found (OHA=$OHA); install it with: nice -n 10 cargo install oha --locked --version 1.16.0 --root target/tools"
else
    echo "latency at rate: oha $("$OHA" --version | head -1), -c$CONNS -z${RATE_DURATION}s --latency-correction -w, $RATE_ROUNDS rounds"
    for round in $(seq "$RATE_ROUNDS"); do
        for rate in $RATES; do
            for c in $RATE_CANDIDATES; do
                if has "$c"; then measure_rate "$c" "$rate" "$round"; fi
            done
        done
    done
fi
[[ -z $RATE_NOTE ]] || echo "$RATE_NOTE" >&2
for entry in "${RSS_PIDS[@]}"; do
    printf '%s\tafter\t%s\n' "${entry%%:*}" "$(rss_kb "${entry#*:}")" >> "$RSS"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report: medians, ratios within each pair, targets; bench/results/ -----
OUT=$BENCH/results
mkdir -p "$OUT"
cp "$RESULTS" "$OUT/latest.tsv"; cp "$RATE_RESULTS" "$OUT/latest-rate.tsv"; cp "$META" "$OUT/latest-meta.tsv"
SETUP="wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, ${WARMUP}s warm-up, $ROUNDS interleaved rounds; \
upstream: nginx serving a 1 KiB file, worker_processes $(nproc), keep-alive to every proxy; \
bench scripts at git $GIT_REV; doorward binary $DOORWARD_BIN \
($(doorward_identity)); \
$(nproc) cores, load avg before $LOAD_BEFORE, after $LOAD_AFTER. \
CPU/req counts the proxy's processes only (for direct: the upstream nginx)."
python3 "$BENCH/report.py" --results "$RESULTS" --rate "$RATE_RESULTS" --meta "$META" --rss "$RSS" \
    --setup "$SETUP" --rate-note "$RATE_NOTE" --md "$OUT/latest.md" --json "$TMP/report.json"
# Memory per idle keep-alive connection, beside nginx (issue 22; the method is
# in bench/results/idle.md). Its own processes, after the others are measured.
if [[ ${IDLE:-1} == 1 ]]; then
    IDLE_N=${IDLE_N:-2000}
    echo "memory per idle keep-alive connection: bench/idle.py --n $IDLE_N, median of 3 rounds"
    python3 "$BENCH/idle.py" --bin "$DOORWARD_BIN" --n "$IDLE_N" --tsv "$TMP/idle.tsv"
    awk -F'\t' -v n="$IDLE_N" '{kib[$1] = $2} END {
        printf "\n| figure | doorward | nginx | ratio | target |\n|---|---|---|---|---|\n"
        printf "| memory per idle keep-alive connection (%d held, VmRSS) | %.1f KiB | %.1f KiB | %.1fx | <= 12 KiB: %s |\n",
            n, kib["doorward"], kib["nginx"], kib["doorward"] / (kib["nginx"] > 0 ? kib["nginx"] : 1),
            kib["doorward"] <= 12 ? "PASS" : "MISS"}' "$TMP/idle.tsv" | tee -a "$OUT/latest.md"
fi
if [[ $PLOT == 1 ]]; then
    VENV=target/bench-venv
    if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
        echo "installing matplotlib (bench/requirements.txt) into $VENV" >&2
        nice -n 10 python3 -m venv "$VENV"
        nice -n 10 "$VENV/bin/pip" install -q -r "$BENCH/requirements.txt"
    fi
    "$VENV/bin/python" "$BENCH/plot.py" "$TMP/report.json" "$OUT/latest.png"
fi
