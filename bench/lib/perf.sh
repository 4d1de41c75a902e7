# bench/lib/perf.sh — CPU profiles of doorward under load (PERF=1), sourced
# by bench/run.sh. After the measured rounds (so perf's own overhead is in
# no figure), each profiled candidate gets one more wrk run of DURATION
# seconds while `perf record` samples its process: user and kernel stacks,
# DWARF unwinding (Rust's std has no frame pointers). inferno
# (on PATH, or `cargo install inferno --locked --root target/tools`) renders them:
#   bench/results/flame-<candidate>.svg (folded stacks stay in the temp dir)
# Knobs: PERF=1, PERF_FREQ (samples/s, default 499), PERF_CANDIDATES
# (default: doorward doorward-auth doorward-auth250, those in CANDIDATES).

PERF=${PERF:-0}
PERF_FREQ=${PERF_FREQ:-499}
PERF_CANDIDATES=${PERF_CANDIDATES:-"doorward doorward-auth doorward-auth250"}

# perf_profiles: the profiling pass (a no-op unless PERF=1).
perf_profiles() {
    [[ $PERF == 1 ]] || return 0
    command -v perf > /dev/null || { echo "perf: not installed (Debian linux-perf); no flame graphs" >&2; return 0; }
    local collapse flamegraph name pid args=() recorder
    collapse=$(command -v inferno-collapse-perf || echo target/tools/bin/inferno-collapse-perf)
    flamegraph=$(command -v inferno-flamegraph || echo target/tools/bin/inferno-flamegraph)
    [[ -x $collapse && -x $flamegraph ]] || { echo "perf: inferno not found (cargo install inferno --locked --root target/tools); no flame graphs" >&2; return 0; }
    mkdir -p "$BENCH/results"
    for name in $PERF_CANDIDATES; do
        has "$name" || continue
        pid=${CHARGE[$name]%% *}
        mapfile -d '' args < <(cookie_args "$name")
        perf record -q -F "$PERF_FREQ" -g --call-graph dwarf,16384 -p "$pid" -o "$TMP/perf-$name.data" \
            > "$TMP/perf-$name.log" 2>&1 &
        recorder=$!
        timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "${args[@]}" "${URL[$name]}" > /dev/null \
            || echo "perf: wrk failed on $name" >&2
        kill -INT "$recorder" 2> /dev/null || true
        wait "$recorder" 2> /dev/null || true
        perf script -i "$TMP/perf-$name.data" 2> /dev/null | "$collapse" > "$TMP/perf-$name.folded"
        "$flamegraph" --title "doorward bench: $name (perf $PERF_FREQ Hz, $(nproc) cores)" \
            --minwidth 0.1 < "$TMP/perf-$name.folded" > "$BENCH/results/flame-$name.svg"
        echo "  flame graph: $BENCH/results/flame-$name.svg"
    done
}
