#!/usr/bin/env python3
"""bench/idle.py — memory per idle keep-alive connection, doorward beside nginx.

Usage: bench/idle.py [--n 2000] [--rounds 3] [--hold 5] [--bin target/release/doorward] [--tsv FILE]
                     [--wake 200]

Both proxies front the same tiny nginx upstream on loopback (`return 200 ok`):
nginx with one worker, doorward with its defaults and one public route. Each
round, for each proxy: read its RSS, open N connections, send one HTTP/1.1
request on each and read the whole response (the connection stays open:
keep-alive), hold them idle for --hold seconds, read the RSS again, close
them. The figure is (held - before) / N, from VmRSS and from Private_Dirty
(smaps_rollup: the heap the process wrote, without shared library pages).
Rounds interleave the proxies; the report is the median of the rounds.

With --wake M, what parking costs instead: M kept-alive connections each
send a request every 0.5 s (never idle long enough to be parked) and then
every 1.5 s (parked before each request: doorward parks after 1 s), and
the proxy's CPU per request is read from the scheduler's counters
(nanoseconds, bench/lib/schedstat.py). The difference is the CPU a request
pays for waking a parked connection (a fresh hyper connection, its
buffers). nginx, which frees an idle connection's buffers too, beside it.
A measurement, not a test. Needs nginx on PATH and `ulimit -n` above N.
"""
import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def status_kb(pids, key):
    """Sum of a /proc/PID/status field (VmRSS) over pids, in KiB."""
    total = 0
    for p in pids:
        with open(f"/proc/{p}/status") as f:
            total += sum(int(line.split()[1]) for line in f if line.startswith(key + ":"))
    return total


def dirty_kb(pids):
    """Sum of Private_Dirty from /proc/PID/smaps_rollup, in KiB."""
    total = 0
    for p in pids:
        with open(f"/proc/{p}/smaps_rollup") as f:
            total += sum(int(line.split()[1]) for line in f if line.startswith("Private_Dirty:"))
    return total


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_response(s):
    """Reads one response with a Content-Length body (all the upstream sends)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed mid-body")
        body += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer: {head[:40]!r}")


def one_round(port, pids, n, hold):
    # Warm the process (first connections allocate runtime and pool state).
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        read_response(s)
        s.close()
    time.sleep(1)
    before = (status_kb(pids, "VmRSS"), dirty_kb(pids))
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        read_response(s)
        socks.append(s)
    time.sleep(hold)
    held = (status_kb(pids, "VmRSS"), dirty_kb(pids))
    # Every connection is still open: a closed one would not be "held".
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                raise RuntimeError("the proxy closed an idle connection while it was held")
        except BlockingIOError:
            pass
        s.close()
    time.sleep(3)
    return [(h - b) / n for h, b in zip(held, before)] + [before[0], held[0]]


def cpu_ns(pids):
    """CPU time of every thread of pids, in nanoseconds."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
    from schedstat import threads

    return sum(run for p in pids for _, _, run, _, _ in threads(p))


def wake_round(port, pids, m, gap, cycles=6):
    """CPU µs per request when each of m connections sends one request
    every `gap` seconds (the first cycle, which opens them, not counted)."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(m)]
    for s in socks:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        used = 0
        for cycle in range(cycles + 1):
            start = time.monotonic()
            before = cpu_ns(pids)
            for s in socks:
                s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                read_response(s)
            if cycle > 0:
                used += cpu_ns(pids) - before
            time.sleep(max(0.0, gap - (time.monotonic() - start)))
        return used / 1000 / (m * cycles)
    finally:
        for s in socks:
            s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hold", type=float, default=5.0, help="seconds held idle before reading RSS")
    ap.add_argument("--bin", default="target/release/doorward")
    ap.add_argument("--tsv", help="also write name, median KiB/conn (RSS), (Private_Dirty) here")
    ap.add_argument("--wake", type=int, default=0, metavar="M",
                    help="measure the CPU of a request on a parked connection instead, with M connections")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.n + 100:
        sys.exit(f"idle.py: ulimit -n {hard} is below {args.n} connections")

    tmp = tempfile.mkdtemp(prefix="doorward-idle.")
    os.chmod(tmp, 0o755)
    os.makedirs(tmp + "/tmp")
    up, nx, dw = free_port(), free_port(), free_port()
    temps = " ".join(f"{k}_temp_path {tmp}/tmp/{k};" for k in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"])
    with open(tmp + "/up.conf", "w") as f:
        f.write(f"worker_processes 1; pid {tmp}/up.pid; error_log {tmp}/up.err; events {{}} "
                f"http {{ access_log off; {temps} server {{ listen 127.0.0.1:{up}; return 200 ok; }} }}")
    with open(tmp + "/nx.conf", "w") as f:
        f.write(f"worker_processes 1; worker_rlimit_nofile {hard}; pid {tmp}/nx.pid; error_log {tmp}/nx.err; "
                f"events {{ worker_connections {args.n + 1000}; }} http {{ access_log off; {temps} "
                f"server {{ listen 127.0.0.1:{nx} backlog=16384; location / {{ proxy_pass http://127.0.0.1:{up}; }} }} }}")
    with open(tmp + "/dw.toml", "w") as f:
        f.write(f'[server]\nlisten = "127.0.0.1:{dw}"\n[log]\nlevel = "warn"\n'
                f'[[route]]\nname = "a"\npath_prefix = "/"\nupstream = "http://127.0.0.1:{up}"\npublic = ["/"]\n')
    procs = [
        subprocess.Popen(["nginx", "-p", tmp, "-c", tmp + "/up.conf", "-g", "daemon off;"]),
        subprocess.Popen(["nginx", "-p", tmp, "-c", tmp + "/nx.conf", "-g", "daemon off;"]),
        subprocess.Popen([args.bin, "serve", "--config", tmp + "/dw.toml"], stdout=subprocess.DEVNULL),
    ]
    try:
        time.sleep(2)
        kids = subprocess.run(["pgrep", "-P", str(procs[1].pid)], capture_output=True, text=True).stdout.split()
        # nginx's memory is its worker's: the master holds no connection.
        who = {"nginx": [int(k) for k in kids] or [procs[1].pid], "doorward": [procs[2].pid]}
        port = {"nginx": nx, "doorward": dw}
        if args.wake:
            wake(port, who, args)
            return
        rows = {name: [] for name in who}
        for r in range(args.rounds):
            for name in who:
                rss, dirty, before, held = one_round(port[name], who[name], args.n, args.hold)
                rows[name].append((rss, dirty))
                print(f"round {r + 1} {name:9s} {args.n} idle keep-alive conns: VmRSS {before} -> {held} KiB, "
                      f"{rss:.2f} KiB/conn (Private_Dirty {dirty:.2f} KiB/conn)", flush=True)
        lines = []
        for name, vals in rows.items():
            rss = statistics.median(v[0] for v in vals)
            dirty = statistics.median(v[1] for v in vals)
            print(f"median    {name:9s} {rss:.2f} KiB/conn VmRSS, {dirty:.2f} KiB/conn Private_Dirty")
            lines.append(f"{name}\t{rss:.2f}\t{dirty:.2f}\n")
        if args.tsv:
            with open(args.tsv, "w") as f:
                f.writelines(lines)
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def wake(port, who, args):
    """The --wake rounds: CPU per request, kept warm vs woken from idle."""
    gaps = {"warm (every 0.5 s)": 0.5, "after idle (every 1.5 s)": 1.5}
    got = {(name, g): [] for name in who for g in gaps}
    for r in range(args.rounds):
        for name in who:
            for label, gap in gaps.items():
                us = wake_round(port[name], who[name], args.wake, gap)
                got[(name, label)].append(us)
                print(f"round {r + 1} {name:9s} {label:25s} {us:7.1f} µs CPU per request", flush=True)
    for name in who:
        warm, woken = (statistics.median(got[(name, g)]) for g in gaps)
        print(f"median    {name:9s} warm {warm:.1f} µs, after idle {woken:.1f} µs: {woken - warm:+.1f} µs per request")


if __name__ == "__main__":
    main()
