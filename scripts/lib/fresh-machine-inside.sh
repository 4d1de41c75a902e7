#!/usr/bin/env bash
# The newcomer's part of scripts/fresh-machine-check.sh, run inside the fresh
# Debian + Rust root (a container or a chroot) in the clone at /src/doorward:
# README's two commands and nothing else. scripts/demo.sh in the background,
# a headless login through it (fresh-machine-login.py, beside this file),
# then scripts/test.sh (--lib unless --full). Full logs go to /fresh-logs;
# the output is the step headers, the install lines and the summaries.
#
# Usage (inside the root): fresh-machine-inside.sh [--full]
set -euo pipefail
full=false
[ "${1:-}" = "--full" ] && full=true
here=$(cd "$(dirname "$0")" && pwd)
logs=/fresh-logs
mkdir -p "$logs"
cd /src/doorward

# Times continue the outer script's clock (FRESH_ELAPSED: seconds so far).
started=$((SECONDS - ${FRESH_ELAPSED:-0}))
step() { printf '\n== %s (at %dm%02ds)\n' "$1" $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)); }
# The lines of a log worth reading: what was installed, what was built, how
# the tests ended, and every error.
summary() {
  grep -E '^(system packages:|added [0-9]+ packages|    Finished |test result:|error(\[|:)|warning: unused|failures:|    [a-z_:]+$|  doorward demo)' "$1" || true
}

demo_pid=""
stop_demo() {
  [ -n "$demo_pid" ] || return 0
  # demo.sh runs in its own session (setsid): end the whole group, which is
  # the script, the provider, the app and doorward.
  kill -TERM -- "-$demo_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 -- "-$demo_pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL -- "-$demo_pid" 2>/dev/null || true
  demo_pid=""
}
trap stop_demo EXIT

step "newcomer's machine"
echo "debian $(cat /etc/debian_version); $(cargo --version); $(rustc --version)"
for tool in node npm python3 psql xmlsec1 chromium; do
  command -v "$tool" >/dev/null 2>&1 && echo "  $tool: present" || echo "  $tool: absent"
done
echo "commit $(git rev-parse --short HEAD): $(git log -1 --format=%s | cut -c1-100)"

step "scripts/demo.sh (in the background; log $logs/demo.log)"
setsid scripts/demo.sh </dev/null >"$logs/demo.log" 2>&1 &
demo_pid=$!
deadline=$((SECONDS + ${FRESH_DEMO_DEADLINE:-5400}))
until curl -s -o /dev/null --max-time 2 http://127.0.0.1:4180/; do
  if ! kill -0 "$demo_pid" 2>/dev/null; then
    echo "demo.sh exited before doorward answered; its log ends:"
    tail -n 40 "$logs/demo.log"
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "doorward did not answer on http://127.0.0.1:4180 in time; the demo's log ends:"
    tail -n 40 "$logs/demo.log"
    exit 1
  fi
  sleep 5
done
summary "$logs/demo.log"
echo "doorward answers on http://127.0.0.1:4180 after $((SECONDS - started))s"

step "headless login as alice through the demo's OpenID provider"
python3 "$here/fresh-machine-login.py"

step "stop the demo"
stop_demo
if curl -s -o /dev/null --max-time 2 http://127.0.0.1:4180/; then
  echo "something still answers on :4180 after the demo stopped"
  exit 1
fi
echo "demo stopped; nothing answers on :4180"

if $full; then
  step "scripts/test.sh (the whole suite; log $logs/test.log)"
  set -- scripts/test.sh
else
  step "scripts/test.sh --lib (the unit tests; log $logs/test.log)"
  set -- scripts/test.sh --lib
fi
status=0
"$@" </dev/null >"$logs/test.log" 2>&1 || status=$?
summary "$logs/test.log"
if [ "$status" -ne 0 ]; then
  echo "$* failed (exit $status); its log ends:"
  tail -n 40 "$logs/test.log"
  exit "$status"
fi
step "done: demo, login and $* passed"
