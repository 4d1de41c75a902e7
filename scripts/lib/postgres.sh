# scripts/lib/postgres.sh — sourced by the benchmarks: a throwaway
# PostgreSQL on 127.0.0.1, from Debian's server binaries (apt-get install
# postgresql), with its defaults (fsync and synchronous_commit on), data on
# the disk. The caller has `STARTED` (PIDs its cleanup stops) and `free_port`.

# initdb and postgres refuse to run as root: as root, run them as postgres.
as_db() {
    if [ "$(id -u)" -eq 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups "$@"; else "$@"; fi
}

# start_postgres DIR PASSWORD: a fresh server with its data in DIR, user
# `doorward` with PASSWORD, database `doorward`. Sets PG_PORT and PG_PID
# (also appended to STARTED); run it in the calling shell, not in $(...).
start_postgres() {
    local dir=$1 password=$2 bindir
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -x "$bindir/postgres" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
    PG_PORT=$(free_port)
    mkdir -p "$dir"
    printf '%s\n' "$password" > "$dir.pwfile"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir" "$dir.pwfile"; fi
    as_db "$bindir/initdb" -D "$dir" -U doorward --pwfile="$dir.pwfile" --auth=scram-sha-256 >/dev/null
    # Not through as_db: started from a function, `$!` would be a subshell
    # that a TERM kills while the postmaster lives on.
    if [ "$(id -u)" -eq 0 ]; then
        setpriv --reuid=postgres --regid=postgres --init-groups \
            "$bindir/postgres" -D "$dir" -p "$PG_PORT" -c listen_addresses=127.0.0.1 -k "$dir" >"$dir.log" 2>&1 &
    else
        "$bindir/postgres" -D "$dir" -p "$PG_PORT" -c listen_addresses=127.0.0.1 -k "$dir" >"$dir.log" 2>&1 &
    fi
    PG_PID=$!
    STARTED+=("$PG_PID")
    for _ in $(seq 100); do
        as_db "$bindir/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
        sleep 0.1
    done
    PGPASSWORD=$password psql -q -h 127.0.0.1 -p "$PG_PORT" -U doorward -d postgres -c 'CREATE DATABASE doorward' >&2
}
