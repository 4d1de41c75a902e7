#!/usr/bin/env bash
# scripts/soak.sh — run doorward under steady load for a while and sample its
# RSS, open fds and threads into a CSV, so a person (or a fitted slope) can
# see whether anything grows. A measurement, not a test: it exits 0 once the
# run completes and prints the slopes.
#
# Load: wrk on keep-alive connections to a public route (an nginx upstream
# serving 1 KiB), plus a loop of fresh connections (curl), so both the
# request path and connection setup/teardown run all the time. Logins,
# refreshes and back-channel logouts are not part of this soak yet.
#
# Env knobs:
#   DOORWARD_BIN  doorward binary              (default target/release/doorward)
#   DURATION      seconds of load              (default 1800)
#   INTERVAL      seconds between samples      (default 5)
#   CONNS         wrk keep-alive connections   (default 8)
#   OUT           CSV path                     (default soak-<date>.csv)
set -euo pipefail

cd "$(dirname "$0")/.."
DOORWARD_BIN=${DOORWARD_BIN:-target/release/doorward}
DURATION=${DURATION:-1800}
INTERVAL=${INTERVAL:-5}
CONNS=${CONNS:-8}
OUT=${OUT:-soak-$(date -u +%Y%m%dT%H%M%SZ).csv}

[[ -x $DOORWARD_BIN ]] || { echo "soak.sh: no doorward binary at $DOORWARD_BIN" >&2; exit 1; }
for tool in wrk nginx curl python3; do
    command -v "$tool" > /dev/null || { echo "soak.sh: needs $tool" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/doorward-soak.XXXXXX)
chmod 755 "$TMP"
mkdir -p "$TMP/www" "$TMP/tmp"
head -c 1024 /dev/urandom > "$TMP/www/1k.bin"
source scripts/lib/bench-tmp.sh   # STARTED, cleanup on exit (KEEP_TMP=1 keeps $TMP), free_port

read -r UP_PORT DW_PORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')

render() {
    sed -e "s|@TMP@|$TMP|g" -e "s|@PORT@|$3|g" -e "s|@UPSTREAM_PORT@|$UP_PORT|g" \
        -e "s|@THREADS@|0|g" "bench/$1" > "$TMP/$2"
}

wait_http() {
    local i
    for i in $(seq 150); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1") == 200 ]] && return 0
        sleep 0.2
    done
    return 1
}

render nginx-upstream.conf.in upstream.conf "$UP_PORT"
nginx -p "$TMP" -c "$TMP/upstream.conf" -g 'daemon off;' 2> "$TMP/upstream.stderr" &
STARTED+=($!)
wait_http "http://127.0.0.1:$UP_PORT/1k.bin" || { echo "soak.sh: nginx did not start" >&2; exit 1; }

render doorward.toml.in doorward.toml "$DW_PORT"
"$DOORWARD_BIN" serve --config "$TMP/doorward.toml" > "$TMP/doorward.log" 2>&1 &
DOORWARD_PID=$!
STARTED+=($!)
wait_http "http://127.0.0.1:$DW_PORT/1k.bin" || { tail -20 "$TMP/doorward.log" >&2; exit 1; }

wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$DW_PORT/1k.bin" > "$TMP/wrk.out" 2>&1 &
STARTED+=($!)
(
    end=$((SECONDS + DURATION))
    while ((SECONDS < end)); do
        curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$DW_PORT/1k.bin" || true
        sleep 0.1
    done
) &
STARTED+=($!)

echo "seconds,rss_kib,fds,threads" > "$OUT"
start=$SECONDS
while ((SECONDS - start < DURATION)); do
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$DOORWARD_PID/status")
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$DOORWARD_PID/status")
    fds=$(find "/proc/$DOORWARD_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$((SECONDS - start)),$rss,$fds,$threads" >> "$OUT"
    sleep "$INTERVAL"
done
sleep 1
grep -E "Requests/sec|Non-2xx|Socket errors|99%" "$TMP/wrk.out" || true

# Least-squares slopes over the second half (after warm-up), per hour.
python3 - "$OUT" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
rows = rows[len(rows) // 2:]
if len(rows) < 3:
    sys.exit("too few samples for a slope")
t = [float(r["seconds"]) for r in rows]
for key in ("rss_kib", "fds", "threads"):
    y = [float(r[key]) for r in rows]
    mt, my = sum(t) / len(t), sum(y) / len(y)
    var = sum((a - mt) ** 2 for a in t)
    slope = sum((a - mt) * (b - my) for a, b in zip(t, y)) / var if var else 0.0
    print(f"{key}: mean {my:.0f}, slope {slope * 3600:+.1f} per hour over the second half")
EOF
echo "samples: $OUT"
