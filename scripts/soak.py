#!/usr/bin/env python3
"""The soak's load and its measurements (started by scripts/soak.sh, which
starts doorward, the real OpenID provider and an nginx upstream first).

Load, at a steady rate: logged-in requests on a pool of sessions, public
requests, and a churn thread that keeps logging new users in (headlessly, at
the real provider), and retires the oldest sessions alternately by a local
logout and by a logout at the provider, which reaches doorward as a
back-channel logout. Refreshes come by themselves: the provider's access
tokens are short-lived, so every session refreshes while it is in the pool.
The rate is a fraction of a peak measured first (this client, unthrottled,
on logged-in requests) unless given.

Every few seconds it samples doorward's RSS, open fds and threads (/proc),
the session cache size and the login/refresh/logout counters (/metrics), and
the p50/p99 of the requests since the last sample, into a CSV; at the end it
fits least-squares slopes of RSS and fds over the samples after a warm-up,
writes summary.json and a PNG plot, and exits 1 if any request failed.
"""
import argparse
import csv
import http.client
import http.cookiejar
import json
import os
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

# The first-form reader of bench/login.py, the bench's headless login.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from login import FormParser  # noqa: E402

PAGE = "/app/1k.bin"
PUBLIC = "/public/1k.bin"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Session:
    """A logged-in user: doorward's cookie and the browser's jar (which
    holds the provider's session, for a logout there)."""

    def __init__(self, user, cookie, opener, jar):
        self.user, self.cookie, self.opener, self.jar = user, cookie, opener, jar
        self.retired = False


def submit(opener, response, fill):
    body = response.read().decode("utf-8", "replace")
    form = FormParser()
    form.feed(body)
    if form.action is None:
        raise RuntimeError(f"no form at {response.geturl()}")
    form.fields.update(fill)
    action = urllib.parse.urljoin(response.geturl(), form.action)
    return opener.open(action, data=urllib.parse.urlencode(form.fields).encode(), timeout=30)


def login(base, user):
    """Logs in at the provider through doorward, as bench/login.py does."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    response = opener.open(f"{base}{PAGE}", timeout=30)
    for _ in range(4):
        if response.geturl().startswith(base):
            break
        response = submit(opener, response, {"login": user, "password": "any"})
    response.read()
    if response.status != 200 or not response.geturl().startswith(base):
        raise RuntimeError(f"login ended with {response.status} at {response.geturl()}")
    for cookie in jar:
        if cookie.name.endswith("doorward") and "-login-" not in cookie.name:
            return Session(user, f"{cookie.name}={cookie.value}", opener, jar)
    raise RuntimeError("no doorward session cookie after login")


def local_logout(base, session):
    """doorward's own logout: the confirmation page, then its form (with
    the CSRF token); doorward then sends the browser on to the provider."""
    cookies = urllib.request.HTTPCookieProcessor(session.jar)
    opener = urllib.request.build_opener(cookies, NoRedirect)
    page = opener.open(f"{base}/_doorward/logout", timeout=30)
    try:
        submit(opener, page, {})
    except urllib.error.HTTPError as e:
        if e.code not in (302, 303):
            raise


def provider_logout(issuer, session):
    """Logout at the provider ("yes, sign me out"): it tells doorward by a
    back-channel logout before it answers."""
    page = session.opener.open(f"{issuer}/session/end?client_id=doorward", timeout=30)
    submit(session.opener, page, {"logout": "yes"}).read()


class Load:
    def __init__(self, args):
        self.args = args
        self.host, self.port = urllib.parse.urlsplit(args.base).hostname, urllib.parse.urlsplit(args.base).port
        self.lock = threading.Lock()
        self.pool = []
        self.latencies = []
        self.requests = 0
        self.errors = 0
        self.error_samples = []
        self.churn = {"logins": 0, "logouts": 0, "backchannel_logouts": 0}
        self.stop = threading.Event()
        self.aborted = None

    def error(self, what):
        with self.lock:
            self.errors += 1
            if len(self.error_samples) < 20:
                self.error_samples.append(f"{time.strftime('%H:%M:%S')} {what}")

    def pick(self):
        with self.lock:
            return random.choice(self.pool) if self.pool else None

    def one_request(self, conn, public):
        """One request; returns the latency, or raises on a failure."""
        session = None if public else self.pick()
        headers = {"Host": f"{self.host}:{self.port}"}
        if session is not None:
            headers["Cookie"] = session.cookie
        path = PUBLIC if session is None else PAGE
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 and not (session is not None and session.retired and response.status == 302):
            raise RuntimeError(f"GET {path} ({'logged in' if session else 'public'}): {response.status}")
        return elapsed

    def worker(self, interval, until, record):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        next_at = time.monotonic() + random.random() * interval
        while not self.stop.is_set() and time.monotonic() < until:
            if interval:
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                # Behind schedule: skip the missed slots rather than burst.
                next_at = max(next_at + interval, time.monotonic())
            try:
                elapsed = self.one_request(conn, random.random() < self.args.public_share)
            except Exception as e:  # noqa: BLE001 - every failure counts
                if record:
                    self.error(str(e))
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                continue
            with self.lock:
                self.requests += 1
                if record:
                    self.latencies.append(elapsed)
        conn.close()

    def run_workers(self, rate, seconds, record):
        interval = self.args.workers / rate if rate else 0
        until = time.monotonic() + seconds
        threads = [
            threading.Thread(target=self.worker, args=(interval, until, record), daemon=True)
            for _ in range(self.args.workers)
        ]
        for t in threads:
            t.start()
        return threads

    def churn_loop(self, until):
        """New logins; the oldest sessions retired, alternately locally and
        at the provider (back-channel)."""
        turn = 0
        while not self.stop.is_set() and time.monotonic() < until:
            time.sleep(self.args.login_every)
            user = f"user{random.randrange(self.args.users)}"
            try:
                session = login(self.args.base, user)
            except Exception as e:  # noqa: BLE001
                self.error(f"login as {user}: {e}")
                continue
            with self.lock:
                self.pool.append(session)
                self.churn["logins"] += 1
                old = self.pool.pop(0) if len(self.pool) > self.args.sessions else None
            if old is None:
                continue
            old.retired = True
            turn += 1
            try:
                if turn % 2:
                    local_logout(self.args.base, old)
                    kind = "logouts"
                else:
                    provider_logout(self.args.issuer, old)
                    kind = "backchannel_logouts"
                self.check_ended(old)
                with self.lock:
                    self.churn[kind] += 1
            except Exception as e:  # noqa: BLE001
                self.error(f"logout of {old.user}: {e}")

    def check_ended(self, session):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        conn.request("GET", PAGE, headers={"Cookie": session.cookie, "Accept": "text/html"})
        status = conn.getresponse().status
        conn.close()
        if status != 302:
            raise RuntimeError(f"the session still answers {status} after its logout")


def proc(pid):
    status = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1))
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
    return rss, len(os.listdir(f"/proc/{pid}/fd")), threads


def metrics(base):
    text = urllib.request.urlopen(f"{base}/_doorward/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)

    def total(prefix, outcome=None):
        return sum(v for k, v in values.items() if k.startswith(prefix)
                   and (outcome is None or f'outcome="{outcome}"' in k))

    return {
        "sessions_cached": total("doorward_sessions_cached"),
        "in_flight": total("doorward_requests_in_flight"),
        "logins_ok": total("doorward_logins_total", "success"),
        "refreshes_ok": total("doorward_refreshes_total", "success"),
        "backchannel_ok": total("doorward_backchannel_logouts_total", "accepted"),
    }


def percentile(values, q):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def slope_per_minute(t, y):
    n = len(t)
    if n < 3:
        return None
    mt, my = sum(t) / n, sum(y) / n
    var = sum((a - mt) ** 2 for a in t)
    return 60 * sum((a - mt) * (b - my) for a, b in zip(t, y)) / var if var else 0.0


COLUMNS = ["seconds", "rss_kib", "fds", "threads", "sessions_cached", "in_flight", "requests", "rate",
           "p50_ms", "p99_ms", "errors", "logins", "refreshes", "logouts", "backchannel_logouts"]


def gone(watch):
    """The first watched process that no longer runs, as NAME (pid N)."""
    for item in watch:
        name, pid = item.split("=", 1)
        if not os.path.exists(f"/proc/{pid}"):
            return f"{name} (pid {pid})"
    return None


def sample_loop(load, args, started, writer, out):
    rows, last = [], load.requests  # not the peak measurement's requests
    end = started + args.duration
    while True:
        now = time.monotonic()
        if now >= end:
            break
        time.sleep(min(args.interval, end - now))
        # On a shared machine someone's `pkill nginx` can end a part of
        # the run; its failures would then be no fault of doorward's.
        missing = gone(args.watch + [f"doorward={args.pid}"])
        if missing:
            load.aborted = f"{missing} is gone (killed from outside?): the run is void"
            print(f"soak: {load.aborted}", file=sys.stderr, flush=True)
            break
        rss, fds, threads = proc(args.pid)
        m = metrics(args.base)
        with load.lock:
            latencies, load.latencies = load.latencies, []
            requests, errors, churn = load.requests, load.errors, dict(load.churn)
        t = time.monotonic() - started
        row = {
            "seconds": round(t, 1), "rss_kib": rss, "fds": fds, "threads": threads,
            "sessions_cached": int(m["sessions_cached"]), "in_flight": int(m["in_flight"]),
            "requests": requests, "rate": round((requests - last) / args.interval, 1),
            "p50_ms": round(1000 * percentile(latencies, 0.50), 2),
            "p99_ms": round(1000 * percentile(latencies, 0.99), 2),
            "errors": errors, "logins": churn["logins"], "refreshes": int(m["refreshes_ok"]),
            "logouts": churn["logouts"], "backchannel_logouts": int(m["backchannel_ok"]),
        }
        last = requests
        rows.append(row)
        writer.writerow(row)
        out.flush()
        print(" ".join(f"{k}={row[k]}" for k in ("seconds", "rss_kib", "fds", "rate", "p99_ms", "errors")),
              flush=True)
    return rows


def plot(rows, path, warmup):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [r["seconds"] / 60 for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for ax, key, label in zip(axes, ("rss_kib", "fds", "p99_ms"), ("RSS (MiB)", "open fds", "p99 (ms)")):
        y = [r[key] / 1024 if key == "rss_kib" else r[key] for r in rows]
        ax.plot(t, y)
        ax.set_ylabel(label)
        ax.axvline(warmup / 60, color="grey", linestyle=":", linewidth=1)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes (dotted: end of warm-up)")
    fig.suptitle("doorward soak: RSS, open fds and p99 latency")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--duration", type=float, default=1800)
    p.add_argument("--interval", type=float, default=5)
    p.add_argument("--warmup", type=float, default=None, help="seconds left out of the slopes")
    p.add_argument("--rate", type=float, default=0, help="requests/s (default: fraction x measured peak)")
    p.add_argument("--fraction", type=float, default=0.5)
    p.add_argument("--peak-seconds", type=float, default=10)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--public-share", type=float, default=0.1)
    p.add_argument("--sessions", type=int, default=20, help="sessions in the pool")
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--login-every", type=float, default=2)
    p.add_argument("--out", required=True, help="directory for soak.csv, soak.png, summary.json")
    p.add_argument("--watch", action="append", default=[], metavar="NAME=PID",
                   help="a process the run needs (upstream, provider): its loss voids the run")
    args = p.parse_args()
    warmup = args.warmup if args.warmup is not None else max(30.0, args.duration / 4)
    os.makedirs(args.out, exist_ok=True)

    load = Load(args)
    for i in range(args.sessions):
        load.pool.append(login(args.base, f"user{i % args.users}"))
    rate = args.rate
    peak = None
    if not rate:
        before = load.requests
        for t in load.run_workers(0, args.peak_seconds, record=False):
            t.join()
        peak = (load.requests - before) / args.peak_seconds
        rate = max(1.0, args.fraction * peak)
        print(f"peak {peak:.0f} req/s with {args.workers} workers; soaking at {rate:.0f} req/s", flush=True)

    started = time.monotonic()
    until = started + args.duration
    at_start = load.requests
    threads = load.run_workers(rate, args.duration, record=True)
    churn = threading.Thread(target=load.churn_loop, args=(until,), daemon=True)
    churn.start()
    with open(os.path.join(args.out, "soak.csv"), "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        rows = sample_loop(load, args, started, writer, out)
    load.stop.set()
    for t in threads + [churn]:
        t.join(timeout=60)

    steady = [r for r in rows if r["seconds"] >= warmup]
    t = [r["seconds"] for r in steady]
    summary = {
        "duration_s": args.duration, "warmup_s": warmup, "samples": len(rows), "steady_samples": len(steady),
        "peak_rps": peak, "target_rps": rate,
        "achieved_rps": round((load.requests - at_start) / args.duration, 1),
        "requests": load.requests - at_start, "errors": load.errors, "error_samples": load.error_samples,
        "aborted": load.aborted,
        "rss_slope_kib_per_min": slope_per_minute(t, [r["rss_kib"] for r in steady]),
        "fds_slope_per_min": slope_per_minute(t, [r["fds"] for r in steady]),
        "rss_kib": {k: f([r["rss_kib"] for r in steady]) for k, f in (("min", min), ("max", max))} if steady else {},
        "fds": {k: f([r["fds"] for r in steady]) for k, f in (("min", min), ("max", max))} if steady else {},
        "p99_ms_max": max((r["p99_ms"] for r in steady), default=None),
        "p50_ms_median": percentile([r["p50_ms"] for r in steady], 0.5),
        **dict(load.churn),
        "refreshes": rows[-1]["refreshes"] if rows else 0,
        "backchannel_logouts_accepted": rows[-1]["backchannel_logouts"] if rows else 0,
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    if rows:
        plot(rows, os.path.join(args.out, "soak.png"), warmup)
    if load.aborted:
        sys.exit(2)
    if load.errors:
        print(f"soak: {load.errors} request(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
