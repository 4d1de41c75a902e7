#!/usr/bin/env bash
# Two doorward replicas on one local PostgreSQL, in front of the demo app:
# replica A on http://127.0.0.1:4180, replica B on http://127.0.0.1:4190,
# the OpenID provider on :4181, PostgreSQL on 127.0.0.1:5433 (data in
# target/replicas). Log in on A, open B: the same session. Sign out on one:
# the other refuses the session at once. Ctrl-C stops everything.
# Needs what scripts/demo.sh needs, plus PostgreSQL's server binaries
# (Debian: apt-get install postgresql; scripts/install-system-packages.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-oidc-peer.sh
cargo build --release --locked
dir=$PWD/target/replicas
rm -rf "$dir"
mkdir -p "$dir"
chmod 755 "$dir"

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/postgres" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)"; exit 1; }
# initdb and postgres refuse to run as root: as root, run them as postgres.
as_db() {
  if [ "$(id -u)" -eq 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups "$@"; else "$@"; fi
}
mkdir -p "$dir/pg"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/pg"
export DOORWARD_DB_PASSWORD=demo-db-password
printf '%s\n' "$DOORWARD_DB_PASSWORD" > "$dir/pwfile"
[ "$(id -u)" -eq 0 ] && chown postgres "$dir/pwfile"
as_db "$bindir/initdb" -D "$dir/pg" -U doorward --pwfile="$dir/pwfile" --auth=scram-sha-256 >/dev/null

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

as_db "$bindir/postgres" -D "$dir/pg" -p 5433 -c listen_addresses=127.0.0.1 -k "$dir/pg" >"$dir/postgres.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  as_db "$bindir/pg_isready" -q -h 127.0.0.1 -p 5433 && break
  sleep 0.1
done
PGPASSWORD=$DOORWARD_DB_PASSWORD psql -q -h 127.0.0.1 -p 5433 -U doorward -d postgres -c 'CREATE DATABASE doorward' 

OIDC_PORT=4181 \
OIDC_ACCESS_TOKEN_TTL=300 \
OIDC_CLIENTS='[{"client_id":"doorward-demo","client_secret":"demo-client-secret",
  "redirect_uris":["http://127.0.0.1:4180/_doorward/callback"],
  "post_logout_redirect_uris":["http://127.0.0.1:4180/_doorward/logged-out"],
  "backchannel_logout_uri":"http://127.0.0.1:4180/_doorward/backchannel-logout",
  "backchannel_logout_session_required":true}]' \
OIDC_ACCOUNTS='{"alice":{"email":"alice@example.com","email_verified":true,"preferred_username":"alice","groups":["engineers","staff"]},
  "bob":{"email":"bob@example.com","email_verified":true,"preferred_username":"bob","groups":["Marketing Team"]}}' \
  node tests/peers/oidc/server.mjs >/dev/null &
pids+=($!)
python3 demo/app.py 3000 &
pids+=($!)

./target/release/doorward keygen --signing > "$dir/assertion-key.pem"
for replica in a:4180 b:4190; do
  name=${replica%%:*}
  port=${replica##*:}
  sed "s/@LISTEN@/127.0.0.1:$port/" demo/replica.toml.in > "$dir/$name.toml"
  ./target/release/doorward serve --config "$dir/$name.toml" 2>&1 | sed "s/^/[$name] /" &
  pids+=($!)
done

cat <<'MSG'

  doorward: two replicas on one PostgreSQL
  ----------------------------------------
  Replica A: http://127.0.0.1:4180/   (log in here: the IdP's callback is on A)
  Replica B: http://127.0.0.1:4190/   (same cookie, same session)
  Sign out on either (/_doorward/logout): the other refuses the session on
  its very next request. Users alice and bob, any password.

MSG
wait
