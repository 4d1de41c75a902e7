# bench/lib/common.sh — sourced by bench/run.sh: templates, readiness, the
# candidate registry, CPU/RSS readings and the two load generators (wrk for
# peak throughput, oha for latency at a constant rate). Uses run.sh's
# globals: BENCH TMP RESULTS RATE_RESULTS META ROUND THREADS CONNS DURATION
# WARMUP RATE_DURATION CLK_TCK UP_PORT IDP_PORT OHA, and STARTED from
# scripts/lib/bench-tmp.sh.

die() { echo "run.sh: $*" >&2; exit 1; }

# render TEMPLATE OUT PORT [N]: fill a bench/ template's @...@ placeholders
# into $TMP/OUT. N is the instance's nginx worker_processes (@WORKERS@) or
# doorward worker_threads (@THREADS@); N=default drops the line that sets
# @THREADS@, so doorward runs with its shipped default.
render() {
    local n=${4:-1} drop='/@THREADS@/{/^[^#]/d}'
    [[ $n == default ]] || drop=
    sed -e "$drop" -e "s|@TMP@|$TMP|g" -e "s|@PORT@|$3|g" -e "s|@UPSTREAM_PORT@|$UP_PORT|g" \
        -e "s|@THREADS@|$n|g" -e "s|@WORKERS@|$n|g" -e "s|@IDP_PORT@|$IDP_PORT|g" \
        -e "s|@NAME@|${2%.*}|g" -e "s|@MODAUTH_PASSPHRASE@|${MODAUTH_PASSPHRASE:-}|g" \
        "$BENCH/$1" > "$TMP/$2"
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

# The candidate registry. register NAME PAIR ROLE URL "PIDS" SETTING [COOKIE]
# PAIR: defaults | one | - (no pair); ROLE: nginx | public | auth | auth250 |
# other. PIDS are the processes whose CPU is charged to the candidate (their
# children too). SETTING is the worker setting shown in the report.
declare -A URL CHARGE COOKIE
register() {
    URL[$1]=$4; CHARGE[$1]=$5; COOKIE[$1]=${7:-}
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$6" >> "$META"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
nthreads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }

# cpu_ticks PID...: CPU ticks of each PID and its live children (nginx and
# Apache workers): utime+stime, plus cutime+cstime of each PID itself so an
# Apache worker that exits mid-run still counts once reaped.
cpu_ticks() {
    local p
    {
        # fields 14-17 of /proc/PID/stat, counted after the ")" closing comm
        for p in "$@"; do sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13 + $14 + $15}'; done
        for p in $(for p in "$@"; do pgrep -P "$p" || true; done); do
            sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || true
        done
    } | awk '{t += $1} END {print t + 0}'
}

# remember_started: note what each started process is, for check_alive.
remember_started() {
    local pid
    for pid in "${STARTED[@]}"; do
        printf '%s\t%s\n' "$pid" "$(tr '\0' ' ' < "/proc/$pid/cmdline" | cut -c1-120)"
    done > "$TMP/started.tsv"
}

# check_alive: stop the run, naming it, if a process the bench started is
# gone (the machine is shared: someone's `pkill nginx` ends a run here).
check_alive() {
    local pid cmd
    while IFS=$'\t' read -r pid cmd; do
        kill -0 "$pid" 2>/dev/null || die "a process of this run is gone (pid $pid: $cmd); its figures would be wrong, stopping"
    done < "$TMP/started.tsv"
}

# cookie_args NAME: wrk/oha arguments that send the candidate's cookie.
cookie_args() { [[ -z ${COOKIE[$1]} ]] || printf '%s\0%s\0' -H "Cookie: ${COOKIE[$1]}"; }

# measure NAME: warm-up, then one timed wrk run at full speed; appends
# "round name rps p50 p99 cpu_us errors load1" to $RESULTS (load1: the
# machine's 1-minute load average right after the run, a noise marker).
measure() {
    local name=$1 out="$TMP/wrk/r$ROUND-$1.txt" t0 t1 args=()
    mapfile -d '' args < <(cookie_args "$name")
    timeout $((WARMUP + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "${args[@]}" "${URL[$name]}" > /dev/null \
        || { check_alive; die "wrk failed on $name (warm-up)"; }
    t0=$(cpu_ticks ${CHARGE[$name]})
    timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${args[@]}" "${URL[$name]}" > "$out" \
        || { check_alive; die "wrk failed on $name"; }
    t1=$(cpu_ticks ${CHARGE[$name]})
    check_alive
    awk -v round="$ROUND" -v name="$name" -v ticks=$((t1 - t0)) -v hz="$CLK_TCK" -v load="$(cut -d' ' -f1 /proc/loadavg)" '
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
            printf "%s\t%s\t%.0f\t%.3f\t%.3f\t%.2f\t%s\t%s\n", round, name, rps, p50, p99, ticks * 1e6 / hz / n, (err ? err : "-"), load
        }' "$out" >> "$RESULTS"
    tail -1 "$RESULTS" | awk -F'\t' '{printf "  %-20s %9s req/s  p50 %7s ms  p99 %7s ms  cpu %7s us/req  errors %s  load %s\n", $2, $3, $4, $5, $6, $7, $8}'
}

# measure_rate NAME RATE ROUND: one oha run at a constant RATE req/s,
# latency corrected for coordinated omission; appends "round name rate
# achieved_rps p50 p99 p99.9 cpu_us errors load1 run_us wait_us slices
# worst_thread box_wait_us box_run_us" to $RATE_RESULTS (the last six from
# the scheduler's counters, per request: see bench/lib/schedstat.py).
measure_rate() {
    local name=$1 rate=$2 round=$3 out="$TMP/oha-$1-$2-$3.json" t0 t1 oha window sched args=()
    mapfile -d '' args < <(cookie_args "$name")
    t0=$(cpu_ticks ${CHARGE[$name]})
    timeout $((RATE_DURATION + 60)) "$OHA" -q "$rate" -z "${RATE_DURATION}s" -c "$CONNS" --no-tui \
        --output-format json --latency-correction --wait-ongoing-requests-after-deadline \
        "${args[@]}" "${URL[$name]}" > "$out" &
    oha=$!
    # Where the time went: the scheduler's counters over the steady middle
    # of the run (bench/lib/schedstat.py), per request sent in that window.
    window=$((RATE_DURATION > 4 ? RATE_DURATION - 2 : 1))
    sleep 1; python3 "$BENCH/lib/schedstat.py" snap ${CHARGE[$name]} > "$TMP/sched-0"
    sleep "$window"; python3 "$BENCH/lib/schedstat.py" snap ${CHARGE[$name]} > "$TMP/sched-1"
    sched=$(python3 "$BENCH/lib/schedstat.py" diff "$TMP/sched-0" "$TMP/sched-1" $((rate * window)))
    wait "$oha"
    t1=$(cpu_ticks ${CHARGE[$name]})
    python3 - "$out" "$round" "$name" "$rate" $((t1 - t0)) "$CLK_TCK" "$(cut -d' ' -f1 /proc/loadavg)" "$sched" >> "$RATE_RESULTS" <<'EOF'
import json, sys
path, round_, name, rate, ticks, hz, load, sched = sys.argv[1:]
d = json.load(open(path))
s, p = d["summary"], d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
ok = codes.get("200", 0)
n = sum(codes.values())
errs = [f"{k}:{v}" for k, v in codes.items() if k != "200"] + [f"{k}:{v}" for k, v in d.get("errorDistribution", {}).items()]
ms = lambda v: (v or 0) * 1000
cpu = int(ticks) * 1e6 / int(hz) / n if n else 0
print(f"{round_}\t{name}\t{rate}\t{s['requestsPerSec']:.0f}\t{ms(p['p50']):.3f}\t{ms(p['p99']):.3f}\t{ms(p['p99.9']):.3f}\t{cpu:.2f}\t{';'.join(errs) or '-'}\t{load}\t{sched}")
EOF
    tail -1 "$RATE_RESULTS" | awk -F'\t' '{printf "  round %s %-20s %6s req/s (got %s)  p50 %7s ms  p99 %7s ms  p99.9 %7s ms  cpu %s us/req  errors %s  load %s  run-queue wait %s us/req (box %s)\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $15}'
}
