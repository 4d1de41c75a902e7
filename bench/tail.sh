#!/usr/bin/env bash
# bench/tail.sh — what a constant-rate run's p99 is made of, for one
# candidate held up by `HOLD=1 bench/run.sh`:
#
#   HOLD=1 CANDIDATES="nginx-auto doorward-auth" PAIRS=defaults bench/run.sh &
#   bench/tail.sh doorward-auth 10000          # then nginx-auto, interleaved
#
# oha drives the candidate at RATE req/s for SECS (default 10) and keeps
# every request (--db-url); meanwhile bench/lib/episodes.py samples the
# scheduler's counters of the candidate, the upstream and oha every 10 ms.
# The report puts the slowest 100 ms windows beside ordinary ones: who ran
# and who waited for a CPU then (see bench/lib/episodes.py).
#
# Env: HOLD_DIR (default: the newest /tmp/doorward-bench.* with hold.tsv),
# OHA, CONNS (default 32), KEEP=1 keeps the per-request database.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 ]] || { sed -n '2,17p' "$0"; exit 2; }
name=$1 rate=$2 secs=${3:-10}
HOLD_DIR=${HOLD_DIR:-$(ls -td /tmp/doorward-bench.*/ 2>/dev/null | while read -r d; do [[ -f $d/hold.tsv ]] && { echo "${d%/}"; break; }; done)}
[[ -n $HOLD_DIR && -f $HOLD_DIR/hold.tsv ]] || { echo "tail.sh: no held run (start HOLD=1 bench/run.sh first)" >&2; exit 1; }
OHA=${OHA:-$(command -v oha || echo target/tools/bin/oha)}
IFS=$'\t' read -r _ url pids cookie < <(grep -P "^\Q$name\E\t" "$HOLD_DIR/hold.tsv") || { echo "tail.sh: $name is not held in $HOLD_DIR" >&2; exit 1; }
upstream=$(pgrep -f -- "-c $HOLD_DIR/upstream.conf" | head -1)
args=(); [[ -z $cookie ]] || args=(-H "Cookie: $cookie")
db=$(mktemp /tmp/doorward-tail.XXXXXX.db); rm -f "$db"
samples=$(mktemp /tmp/doorward-tail.XXXXXX.json)
trap 'rm -f "$samples"; [[ ${KEEP:-0} == 1 ]] || rm -f "$db"' EXIT
"$OHA" -q "$rate" -z "${secs}s" -c "${CONNS:-32}" --no-tui --output-format json --latency-correction \
    --wait-ongoing-requests-after-deadline "${args[@]}" --db-url "$db" "$url" > /dev/null 2>&1 &
oha=$!
python3 bench/lib/episodes.py sample "$secs" "$samples" $pids $upstream $oha
wait "$oha"
python3 bench/lib/episodes.py report "$samples" "$db" "$name at $rate req/s:"
[[ ${KEEP:-0} != 1 ]] || echo "per-request rows kept in $db"
