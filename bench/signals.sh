#!/usr/bin/env bash
# bench/signals.sh — the Shared Signals receiver (issue 21), on 127.0.0.1.
# A measurement, not a test: it exits 0 once the run completes and prints
# PASS/MISS against the targets:
#   1. SETs verified and applied per second of doorward CPU on one core:
#      at least 2,000/s. The test transmitter (tests/peers/ssf, its
#      /_test/bench) signs COUNT distinct session-revoked SETs for distinct
#      subjects before its clock starts, then pushes them to replica A; A's
#      CPU is utime+stime from /proc/PID/stat before and after. RS256 and
#      ES256, iss_sub subjects (and email subjects, which are matched in
#      the claims), on PostgreSQL, then on SQLite (one replica).
#   2. Push to refusal on the OTHER replica: SESSIONS users log in through
#      replica B at the test OP (tests/peers/oidc, bench/login.py); for each,
#      a session-revoked SET is pushed to replica A and replica B is polled
#      with the user's cookie until it refuses it (bench/signals_delay.py):
#      p99 under 1 s.
# Placement: replica A pinned to CPU 1; replica B, PostgreSQL, the
# transmitter, the OP and the upstream pinned to CPU 0 (2 cores). Each
# replica runs worker_threads = 1. Other builds may share the machine: the
# load average is recorded with the figures.
#
# Env knobs:
#   DOORWARD_BIN   doorward binary (default target/release/doorward, built here)
#   COUNT          SETs per throughput run            (default 20000)
#   EMAIL_COUNT    SETs of the email-subject runs      (default 2000: an
#                  email is matched in each session's claims, row by row)
#   CONCURRENCY    push connections of the transmitter (default 4)
#   SESSIONS       logged-in sessions for the delay   (default 200)
#   OTHERS         sessions of other users written into the store before
#                  part 1, as a deployment has         (default 10000)
#   BACKENDS       "postgres sqlite" or a subset       (default both)
#   DELAY=0        skip part 2 (no OP, no logins)
#   OIDC_NODE_MODULES  node_modules of tests/peers/oidc, when the checkout's
#                  is missing (default tests/peers/oidc/node_modules)
#   KEEP_TMP=1     keep the temp dir (configs, logs)
# Output: the report on stdout and in bench/results/signals.md.
set -euo pipefail

cd "$(dirname "$0")/.."
DOORWARD_BIN=${DOORWARD_BIN:-}
COUNT=${COUNT:-20000}
EMAIL_COUNT=${EMAIL_COUNT:-2000}
CONCURRENCY=${CONCURRENCY:-4}
SESSIONS=${SESSIONS:-200}
OTHERS=${OTHERS:-10000}
BACKENDS=${BACKENDS:-"postgres sqlite"}
DELAY=${DELAY:-1}
PY=target/pyenv/bin/python
CLK_TCK=$(getconf CLK_TCK)
TARGET_RATE=2000
TARGET_P99_MS=1000
MGMT_TOKEN=bench-ssf-management-token-0123456789
PUSH_TOKEN=bench-ssf-push-token-0123456789abcdef0123
AUDIENCE=http://doorward.bench
REVOKED=https://schemas.openid.net/secevent/caep/event-type/session-revoked

die() { echo "signals.sh: $*" >&2; exit 1; }
[[ -x $PY ]] || die "no $PY (the venv of tests/peers/python/requirements.txt; scripts/test.sh makes it)"
if [[ -z $DOORWARD_BIN ]]; then
    cargo build --release --locked --bin doorward >&2
    DOORWARD_BIN=${CARGO_TARGET_DIR:-target}/release/doorward
fi
[[ -x $DOORWARD_BIN ]] || die "no doorward binary at $DOORWARD_BIN"

TMP=$(mktemp -d "$PWD/target/bench-signals.XXXXXX")
chmod 755 "$TMP"
source scripts/lib/bench-tmp.sh                # STARTED, cleanup on exit, free_port(s)
source scripts/lib/postgres.sh
source bench/lib/common.sh                     # wait_http, cpu_ticks (PID + children)
die() { echo "signals.sh: $*" >&2; exit 1; }
REPORT=$TMP/report.md
: > "$REPORT"
say() { echo "$*" | tee -a "$REPORT"; }

read -r UP_PORT IDP_PORT A_PORT B_PORT S_PORT < <(free_ports 5)

# pin CPU PID: the process and its children (PostgreSQL's) on that CPU;
# later children inherit it.
pin() {
    local p
    for p in $2 $(pgrep -P "$2" || true); do taskset -cp "$1" "$p" > /dev/null; done
}

# pg_ticks: PostgreSQL's CPU ticks (the postmaster and its live backends),
# 0 without it.
pg_ticks() { if [[ -n ${PG_PID:-} ]]; then cpu_ticks "$PG_PID"; else echo 0; fi; }

# ---- peers ------------------------------------------------------------------
mkdir -p "$TMP/www"
echo ok > "$TMP/www/index.html"
taskset -c 0 python3 -m http.server "$UP_PORT" --bind 127.0.0.1 --directory "$TMP/www" \
    > "$TMP/upstream.log" 2>&1 &
STARTED+=($!)

taskset -c 0 "$PY" tests/peers/ssf/transmitter.py --token "$MGMT_TOKEN" --audience "$AUDIENCE" \
    < /dev/null > "$TMP/ssf.out" 2> "$TMP/ssf.log" &
SSF_PID=$!; STARTED+=($!)
for _ in $(seq 100); do [[ -s $TMP/ssf.out ]] && break; sleep 0.1; done
TX=$($PY -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["issuer"])' "$TMP/ssf.out") \
    || die "the transmitter did not start (see $TMP/ssf.log)"

start_idp() {
    local accounts clients modules=${OIDC_NODE_MODULES:-tests/peers/oidc/node_modules} dir=tests/peers/oidc
    # A checkout whose node_modules does not resolve runs a copy of the peer
    # beside the given one.
    if [[ ! -d tests/peers/oidc/node_modules/oidc-provider ]]; then
        [[ -d $modules/oidc-provider ]] || die "no oidc-provider in $modules (npm ci --prefix tests/peers/oidc, or set OIDC_NODE_MODULES)"
        mkdir -p "$TMP/oidc"
        cp tests/peers/oidc/server.mjs tests/peers/oidc/package.json "$TMP/oidc/"
        ln -s "$(realpath "$modules")" "$TMP/oidc/node_modules"
        dir=$TMP/oidc
    fi
    accounts=$(python3 -c 'import json, sys; n = int(sys.argv[1])
print(json.dumps({"user%04d" % i: {"email": "user%04d@bench.test" % i} for i in range(n)}))' "$SESSIONS")
    clients="[{\"client_id\":\"doorward-bench\",\"client_secret\":\"bench-secret\",\"redirect_uris\":[\"http://127.0.0.1:$A_PORT/_doorward/callback\",\"http://127.0.0.1:$B_PORT/_doorward/callback\"]}]"
    OIDC_PORT=$IDP_PORT OIDC_ACCESS_TOKEN_TTL=3600 OIDC_ID_TOKEN_TTL=3600 OIDC_CLIENTS=$clients OIDC_ACCOUNTS=$accounts \
        taskset -c 0 node "$dir/server.mjs" > "$TMP/idp.out" 2> "$TMP/idp.log" &
    STARTED+=($!)
    wait_http "http://127.0.0.1:$IDP_PORT/.well-known/openid-configuration" $! || die "the OP did not start (see $TMP/idp.log)"
}
[[ $DELAY == 0 ]] || start_idp

# doorward NAME PORT CPU STORE_LINES: one replica, pinned, started; sets PID_<NAME>.
doorward() {
    local name=$1 port=$2 cpu=$3 store=$4 pid
    cat > "$TMP/$name.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
public_url = "http://127.0.0.1:$port"
worker_threads = 1
[log]
level = "warn"
format = "json"
access_log = false
[store]
$store
[session]
keys = ["bench-session-key-0123456789abcdef0123456789abcdef"]
[[provider]]
name = "bench-idp"
kind = "oidc"
issuer = "http://127.0.0.1:$IDP_PORT"
client_id = "doorward-bench"
client_secret = "bench-secret"
scopes = ["openid", "email"]
[[route]]
name = "bench"
path_prefix = "/"
upstream = "http://127.0.0.1:$UP_PORT"
[[signals]]
name = "bench"
issuer = "$TX"
provider = "bench-idp"
audience = "$AUDIENCE"
delivery = "push"
push_token = "$PUSH_TOKEN"
transmitter_token = "$MGMT_TOKEN"
algorithms = ["RS256", "ES256"]
EOF
    "$DOORWARD_BIN" check --config "$TMP/$name.toml" > "$TMP/$name.check" 2>&1 \
        || { cat "$TMP/$name.check" >&2; die "$name: doorward check failed"; }
    taskset -c "$cpu" "$DOORWARD_BIN" serve --config "$TMP/$name.toml" > "$TMP/$name.log" 2>&1 &
    pid=$!; STARTED+=($!)
    wait_http "http://127.0.0.1:$port/_doorward/healthz" "$pid" || { tail -20 "$TMP/$name.log" >&2; die "$name did not start"; }
    printf -v "PID_$name" '%s' "$pid"
}

# stream PORT: a push stream at the transmitter to that replica (as an
# operator registers doorward by hand); prints its id.
stream() {
    curl -sf -X POST "$TX/_test/streams" -H 'content-type: application/json' -d "{
        \"delivery\": {\"method\": \"urn:ietf:rfc:8935\",
                       \"endpoint_url\": \"http://127.0.0.1:$1/_doorward/ssf/bench\",
                       \"authorization_header\": \"Bearer $PUSH_TOKEN\"},
        \"events_requested\": [\"$REVOKED\"], \"aud\": \"$AUDIENCE\"}" \
        | $PY -c 'import json, sys; print(json.load(sys.stdin)["stream_id"])'
}

# subjects KIND N: N distinct subjects nobody is logged in as (each SET
# still runs its whole path: signature, jti, the sessions' lookup).
subjects() {
    $PY -c 'import json, sys; kind, n, iss = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if kind == "email":
    print(json.dumps(["load-%06d@bench.test" % i for i in range(n)]))
else:
    print(json.dumps([{"format": "iss_sub", "iss": iss, "sub": "load-%06d" % i} for i in range(n)]))' \
        "$1" "$2" "http://127.0.0.1:$IDP_PORT"
}

# seed_others BACKEND: OTHERS sessions of other users of the same provider
# (subject seed-N, email seed-N@bench.test), written straight into the
# store after doorward made its schema: what each SET's lookup reads past.
seed_others() {
    local now columns
    now=$(date +%s)
    columns="key, provider, issuer, subject, sid, claims, tokens, created_at, expires_at, last_seen, last_refresh"
    # seed_values TOKENS: the columns after the key (bytes are spelt per backend)
    seed_values() {
        echo "'bench-idp', 'http://127.0.0.1:$IDP_PORT', 'seed-' || i, 'sid-' || i,
            '{\"merged\":{\"sub\":\"seed-' || i || '\",\"email\":\"seed-' || i || '@bench.test\"}}',
            $1, $now - 60, $now + 86400, $now - 60, $now - 60"
    }
    case $1 in
        postgres)
            PGPASSWORD=bench-db-password psql -q -h 127.0.0.1 -p "$PG_PORT" -U doorward -d doorward -c \
                "INSERT INTO sessions ($columns) SELECT decode(lpad(to_hex(i), 64, '0'), 'hex'),
                 $(seed_values "'\x00'::bytea") FROM generate_series(1, $OTHERS) AS i" ;;
        sqlite)
            sqlite3 -cmd '.timeout 5000' "$TMP/signals.db" \
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $OTHERS)
                 INSERT INTO sessions ($columns) SELECT randomblob(32), $(seed_values "x'00'") FROM s" > /dev/null ;;
    esac
}

# throughput LABEL PID STREAM ALG SUBJECTS: one /_test/bench run, A's CPU
# around it; appends a table row.
throughput() {
    local label=$1 pid=$2 stream_id=$3 alg=$4 kind=$5 before after answer pg_before pg_after count=$COUNT
    [[ $kind != email ]] || count=$EMAIL_COUNT
    subjects "$kind" "$count" > "$TMP/subjects.json"
    $PY -c 'import json, sys; print(json.dumps({"stream_id": sys.argv[1], "count": int(sys.argv[2]),
"concurrency": int(sys.argv[3]), "alg": sys.argv[4], "event": sys.argv[5],
"subjects": json.load(open(sys.argv[6]))}))' "$stream_id" "$count" "$CONCURRENCY" "$alg" "$REVOKED" \
        "$TMP/subjects.json" > "$TMP/bench-request.json"
    # The transmitter signs every SET before its clock starts: the CPU is
    # read around the pushes only, when the answer says how long they took.
    before=$(cpu_ticks "$pid") pg_before=$(pg_ticks)
    answer=$(curl -sf --max-time 900 -X POST "$TX/_test/bench" -H 'content-type: application/json' \
        --data-binary @"$TMP/bench-request.json") || die "the bench call failed (see $TMP/ssf.log)"
    after=$(cpu_ticks "$pid") pg_after=$(pg_ticks)
    [[ $label == postgres ]] || pg_before=0 pg_after=0
    echo "$answer" > "$TMP/bench-$label-$alg-$kind.json"
    $PY - "$answer" "$before" "$after" "$CLK_TCK" "$label" "$alg" "$kind" "$TARGET_RATE" "$pg_before" "$pg_after" <<'EOF' | tee -a "$REPORT"
import json, sys
a = json.loads(sys.argv[1])
before, after, tck = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cpu = (after - before) / tck
accepted = a["accepted"]
per_cpu = accepted / cpu if cpu > 0 else float("inf")
verdict = "PASS" if per_cpu >= int(sys.argv[8]) else "MISS"
pg = (int(sys.argv[10]) - int(sys.argv[9])) / tck
print(f"| {sys.argv[5]} | {sys.argv[6]} | {sys.argv[7]} | {a['sent']} | {accepted} | {a['seconds']:.2f} "
      f"| {accepted / a['seconds']:,.0f} | {cpu:.2f} | {per_cpu:,.0f} | {verdict} | {pg:.2f} |"
      + ("" if a["errors"] == 0 and accepted == a["sent"] else f" statuses {a['statuses']}, errors {a['errors']}"))
EOF
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "# Shared signals receiver: benchmark"
say ""
say "$(date -u '+%Y-%m-%d %H:%M UTC'), $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bench/signals.sh bench/signals_delay.py || echo -dirty);" \
    "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average before: $LOAD_BEFORE."
say "doorward release build, worker_threads = 1; replica A on CPU 1; replica B, PostgreSQL $(ls /usr/lib/postgresql | sort -V | tail -1)," \
    "the test transmitter, the test OP and the upstream on CPU 0. COUNT=$COUNT SETs per run (EMAIL_COUNT=$EMAIL_COUNT with email subjects), $CONCURRENCY push connections."
say ""
say "## 1. SETs verified and applied per CPU-second (target ≥ $TARGET_RATE/s on one core)"
say ""
say "Each SET: signature, typ/iss/aud/iat checks, its jti stored once, the sessions it names looked up and ended."
say "No session matches the load subjects. The store holds $OTHERS sessions of other users of the same provider" \
    "(written into it beforehand), plus, on PostgreSQL, the $([[ $DELAY == 0 ]] && echo 0 || echo "$SESSIONS") logged-in sessions of part 2."
say "PostgreSQL's CPU (on CPU 0) is shown beside A's: the store's work is not in A's figure."
say ""
say "| store | alg | subject | sent | accepted (202) | seconds | SETs/s wall | A's CPU s | SETs per CPU-s | target | PostgreSQL CPU s |"
say "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"

for backend in $BACKENDS; do
    case $backend in
        postgres)
            start_postgres "$TMP/pg" bench-db-password
            pin 0 "$PG_PID"
            pgstore="url = \"postgres://doorward@127.0.0.1:$PG_PORT/doorward\"
password = \"bench-db-password\""
            doorward A "$A_PORT" 1 "$pgstore"
            doorward B "$B_PORT" 0 "$pgstore"
            if [[ $DELAY != 0 ]]; then
                echo "logging $SESSIONS users in through replica B..." >&2
                seq -f 'user%04g' 0 $((SESSIONS - 1)) \
                    | xargs -P 4 -I{} sh -c "c=\$($PY bench/login.py http://127.0.0.1:$B_PORT/ {}) && echo {} \$c" \
                    > "$TMP/cookies.txt" 2> "$TMP/logins.log" || true
                [[ $(wc -l < "$TMP/cookies.txt") == "$SESSIONS" ]] || { tail -5 "$TMP/logins.log" >&2; die "not every login succeeded"; }
            fi
            seed_others postgres
            STREAM_A=$(stream "$A_PORT")
            for alg in RS256 ES256; do throughput postgres "$PID_A" "$STREAM_A" "$alg" iss_sub; done
            throughput postgres "$PID_A" "$STREAM_A" ES256 email
            ;;
        sqlite)
            doorward S "$S_PORT" 1 "url = \"sqlite://$TMP/signals.db\""
            seed_others sqlite
            STREAM_S=$(stream "$S_PORT")
            for alg in RS256 ES256; do throughput sqlite "$PID_S" "$STREAM_S" "$alg" iss_sub; done
            throughput sqlite "$PID_S" "$STREAM_S" ES256 email
            ;;
        *) die "unknown backend $backend (BACKENDS takes postgres, sqlite)" ;;
    esac
done

# ---- 2. push to refusal on the other replica ----------------------------------
if [[ $DELAY != 0 && " $BACKENDS " == *" postgres "* ]]; then
    say ""
    say "## 2. Push to refusal on the other replica (target p99 < $TARGET_P99_MS ms)"
    say ""
    STREAM_B=$STREAM_A
    $PY bench/signals_delay.py --transmitter "$TX" --stream "$STREAM_B" \
        --push "http://127.0.0.1:$A_PORT/_doorward/ssf/bench" --push-token "$PUSH_TOKEN" \
        --replica "http://127.0.0.1:$B_PORT/" --issuer "http://127.0.0.1:$IDP_PORT" \
        --cookies "$TMP/cookies.txt" --target-ms "$TARGET_P99_MS" | tee -a "$REPORT"
fi

say ""
say "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
mkdir -p bench/results
cp "$REPORT" bench/results/signals.md
echo "written: bench/results/signals.md" >&2
