# bench/lib/candidates.sh — sourced by bench/run.sh: start what each
# candidate needs and register it (see register in bench/lib/common.sh).
# Every process started is appended to STARTED, which the cleanup trap of
# scripts/lib/bench-tmp.sh stops on exit.

# start_nginx NAME TEMPLATE PORT WORKERS: nginx in the foreground of a
# background job; sets NGINX_PID.
start_nginx() {
    render "$2" "$1.conf" "$3" "$4"
    nginx -p "$TMP" -c "$TMP/$1.conf" -g 'daemon off;' 2> "$TMP/$1.stderr" &
    NGINX_PID=$!; STARTED+=($!)
    wait_http "http://127.0.0.1:$3/1k.bin" $! || { cat "$TMP/$1.stderr" "$TMP/$1-error.log" >&2 || true; die "$1 nginx did not start"; }
}

# start_doorward NAME TEMPLATE PORT THREADS: sets DOORWARD_PID.
start_doorward() {
    [[ -x $DOORWARD_BIN ]] || die "no doorward binary at $DOORWARD_BIN (set DOORWARD_BIN, or CANDIDATES without doorward*)"
    render "$2" "$1.toml" "$3" "$4"
    "$DOORWARD_BIN" serve --config "$TMP/$1.toml" > "$TMP/$1.log" 2>&1 &
    DOORWARD_PID=$!; STARTED+=($!)
    wait_http "http://127.0.0.1:$3/_doorward/healthz" "$DOORWARD_PID" || { tail -20 "$TMP/$1.log" >&2; die "$1: healthz never answered 200 (log tail above)"; }
}

# doorward_threads_label THREADS PID: how the report names a doorward's
# runtime shape, with the threads the process really has.
doorward_threads_label() {
    if [[ $1 == default ]]; then
        echo "worker_threads not set (shipped default ${SHIPPED_THREADS:-?}; 0 = one per core); $(nthreads "$2") OS threads"
    else
        echo "worker_threads = $1; $(nthreads "$2") OS threads"
    fi
}

# doorward_identity: which doorward binary ran (it need not come from this
# checkout): its version, build time and a short hash.
doorward_identity() {
    [[ -x $DOORWARD_BIN ]] || { echo "not used"; return; }
    echo "$("$DOORWARD_BIN" --version 2>/dev/null | head -1), built $(date -u -r "$DOORWARD_BIN" '+%Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$DOORWARD_BIN" | cut -c1-12)"
}

# login URL USER [COOKIE_NAME]: a session cookie, logged in at the bench OP.
login() { python3 "$BENCH/login.py" "$@" || die "login as $2 at $1 failed"; }

# check_cookie URL COOKIE: the cookie gets the protected file.
check_cookie() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $2" "$1") == 200 ]] || die "the session cookie does not authenticate at $1"
}

# The test OP (tests/peers/oidc), with one client for doorward (every
# doorward-auth* callback) and one for mod_auth_openidc, and two users:
# alice (2 groups) and big (250 groups).
start_idp() {
    local groups
    scripts/ensure-oidc-peer.sh
    groups=$(python3 -c 'import json; print(json.dumps(["team-%03d" % i for i in range(250)]))')
    OIDC_PORT=$IDP_PORT OIDC_ACCESS_TOKEN_TTL=3600 \
    OIDC_CLIENTS="[{\"client_id\":\"doorward-bench\",\"client_secret\":\"bench-secret\",\"redirect_uris\":[\"http://127.0.0.1:$DA_PORT/_doorward/callback\",\"http://127.0.0.1:$DA1_PORT/_doorward/callback\",\"http://127.0.0.1:$DP_PORT/_doorward/callback\",\"http://127.0.0.1:$DS_PORT/_doorward/callback\",\"http://127.0.0.1:$DT_PORT/_doorward/callback\"]},
                   {\"client_id\":\"modauth-bench\",\"client_secret\":\"bench-secret\",\"redirect_uris\":[\"http://127.0.0.1:$MA_PORT/redirect_uri\"]}]" \
    OIDC_ACCOUNTS="{\"alice\":{\"email\":\"alice@example.com\",\"groups\":[\"engineers\",\"staff\"]},\"big\":{\"email\":\"big@example.com\",\"groups\":$groups}}" \
        node tests/peers/oidc/server.mjs > "$TMP/idp.out" 2> "$TMP/idp.log" &
    STARTED+=($!)
    wait_http "http://127.0.0.1:$IDP_PORT/.well-known/openid-configuration" $! || die "the bench IdP did not start"
}

# The upstream: nginx serving a 1 KiB file, one worker per core.
start_upstream() {
    start_nginx upstream nginx-upstream.conf.in "$UP_PORT" "$(nproc)"
    UPSTREAM_PID=$NGINX_PID
    register direct - other "http://127.0.0.1:$UP_PORT/1k.bin" "$UPSTREAM_PID" "upstream alone, worker_processes $(nproc)"
}

# start_pair PAIR: the nginx proxy and the doorward candidates of one pair.
#   defaults: nginx worker_processes auto, doorward as shipped;
#   one:      nginx worker_processes 1,    doorward worker_threads = 1.
start_pair() {
    local pair=$1 workers threads sfx nx dw da label alice big nx_port dw_port da_port
    case $pair in
        defaults) workers=auto threads=default sfx= nx=nginx-auto
                  nx_port=$NXA_PORT dw_port=$DW_PORT da_port=$DA_PORT ;;
        one)      workers=1 threads=1 sfx=-1t nx=nginx-1
                  nx_port=$NX1_PORT dw_port=$DW1_PORT da_port=$DA1_PORT ;;
        *) die "unknown pair $pair (PAIRS takes defaults, one)" ;;
    esac
    dw=doorward$sfx da=doorward-auth$sfx
    if has "$nx"; then
        start_nginx "$nx" nginx-proxy.conf.in "$nx_port" "$workers"
        register "$nx" "$pair" nginx "http://127.0.0.1:$nx_port/1k.bin" "$NGINX_PID" \
            "worker_processes $workers ($(pgrep -c -P "$NGINX_PID") worker process(es))"
    fi
    if has "$dw"; then
        start_doorward "$dw" doorward.toml.in "$dw_port" "$threads"
        wait_http "http://127.0.0.1:$dw_port/1k.bin" || die "$dw does not proxy /1k.bin"
        sleep 1
        printf '%s\tidle\t%s\n' "$dw" "$(rss_kb "$DOORWARD_PID")" >> "$RSS"
        register "$dw" "$pair" public "http://127.0.0.1:$dw_port/1k.bin" "$DOORWARD_PID" "$(doorward_threads_label "$threads" "$DOORWARD_PID")"
        RSS_PIDS+=("$dw:$DOORWARD_PID")
    fi
    if has "$da" || has "doorward-auth250$sfx"; then
        start_doorward "$da" doorward-auth.toml.in "$da_port" "$threads"
        sleep 1
        printf '%s\tidle\t%s\n' "$da" "$(rss_kb "$DOORWARD_PID")" >> "$RSS"
        label=$(doorward_threads_label "$threads" "$DOORWARD_PID")
        alice=$(login "http://127.0.0.1:$da_port/1k.bin" alice)
        big=$(login "http://127.0.0.1:$da_port/1k.bin" big)
        check_cookie "http://127.0.0.1:$da_port/1k.bin" "$alice"
        check_cookie "http://127.0.0.1:$da_port/1k.bin" "$big"
        register "$da" "$pair" auth "http://127.0.0.1:$da_port/1k.bin" "$DOORWARD_PID" "$label" "$alice"
        register "doorward-auth250$sfx" "$pair" auth250 "http://127.0.0.1:$da_port/1k.bin" "$DOORWARD_PID" "$label" "$big"
        RSS_PIDS+=("$da:$DOORWARD_PID")
    fi
}

# start_auth_variant NAME PORT LABEL SED-ARGS...: doorward-auth's config
# with the sed edits applied, logged in as alice, registered beside the
# defaults pair (its worker setting labelled with LABEL).
start_auth_variant() {
    local name=$1 port=$2 label=$3 alice url="http://127.0.0.1:$2/1k.bin"; shift 3
    render doorward-auth.toml.in "$name.toml" "$port" default
    sed -i "$@" "$TMP/$name.toml"
    "$DOORWARD_BIN" serve --config "$TMP/$name.toml" > "$TMP/$name.log" 2>&1 &
    DOORWARD_PID=$!; STARTED+=($!)
    wait_http "http://127.0.0.1:$port/_doorward/healthz" "$DOORWARD_PID" || { tail -20 "$TMP/$name.log" >&2; die "$name did not start"; }
    alice=$(login "$url" alice)
    check_cookie "$url" "$alice"
    register "$name" defaults other "$url" "$DOORWARD_PID" "$(doorward_threads_label default "$DOORWARD_PID"), $label" "$alice"
}

# doorward-auth (alice) with its store on PostgreSQL instead of SQLite:
# sessions are read from the cache once warm, so this should match
# doorward-auth.
start_doorward_auth_pg() {
    start_postgres "$TMP/pg" bench-db-password
    start_auth_variant doorward-auth-pg "$DP_PORT" "store on PostgreSQL" \
        -e "s|^url = \"sqlite://.*|url = \"postgres://doorward@127.0.0.1:$PG_PORT/doorward\"\npassword = \"bench-db-password\"|"
}

# doorward-auth (alice) on the shared work-stealing runtime, with as many
# threads as the default: the runtime-shape comparison in one run.
start_doorward_auth_shared() {
    start_auth_variant doorward-auth-shared "$DS_PORT" 'runtime = "shared"' -e 's|^\[server\]$|[server]\nruntime = "shared"|'
}

# doorward-auth (alice) with traces on, every request sampled, exported to
# the upstream nginx (which answers OTLP/HTTP posts with an empty 200): what
# tracing costs per request, in the same run.
start_doorward_auth_traced() {
    start_auth_variant doorward-auth-traced "$DT_PORT" "traces on, sample_ratio 1.0" \
        -e '$a [traces]' -e '$a enabled = true' -e "\$a endpoint = \"http://127.0.0.1:$UP_PORT/v1/traces\"" \
        -e '$a sample_ratio = 1.0'
}

# Apache httpd (event MPM, -DFOREGROUND) with mod_auth_openidc, logged in at
# the same OP as alice and big; its cookie is mod_auth_openidc_session.
start_modauth() {
    local pid url="http://127.0.0.1:$MA_PORT/1k.bin" label alice big
    command -v apache2 > /dev/null && [[ -f /usr/lib/apache2/modules/mod_auth_openidc.so ]] \
        || die "modauth needs apache2 and mod_auth_openidc (apt-get install -y --no-install-recommends apache2 libapache2-mod-auth-openidc)"
    MODAUTH_PASSPHRASE=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    mkdir -p "$TMP/apache/run"
    render apache-modauth.conf.in apache-modauth.conf "$MA_PORT"
    apache2 -f "$TMP/apache-modauth.conf" -d "$TMP/apache" -DFOREGROUND > "$TMP/apache.stderr" 2>&1 &
    pid=$!; STARTED+=($!)
    # Unauthenticated, a browser-like request is sent to the OP: ready.
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || { cat "$TMP/apache.stderr" "$TMP/apache/error.log" >&2 || true; die "apache (modauth) exited"; }
        [[ $(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: text/html' --max-time 1 "$url") == 302 ]] && break
        sleep 0.2
    done
    label="Apache event MPM, StartServers 2 x ThreadsPerChild 25; $(pgrep -c -P "$pid") worker processes"
    alice=$(login "$url" alice mod_auth_openidc_session)
    big=$(login "$url" big mod_auth_openidc_session)
    check_cookie "$url" "$alice"
    check_cookie "$url" "$big"
    register modauth defaults other "$url" "$pid" "$label" "$alice"
    register modauth250 defaults other "$url" "$pid" "$label" "$big"
}
