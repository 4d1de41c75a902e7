#!/usr/bin/env python3
"""What a constant-rate run's slow requests coincide with (bench/tail.sh).

  episodes.py sample SECS OUT PID...
      every 10 ms, each thread's CPU and run-queue wait (nanoseconds, from
      /proc/PID/task/TID/schedstat) for the PIDs and their children
  episodes.py report SAMPLES OHA_DB [LABEL]
      the run's latency (oha's per-request rows, corrected for coordinated
      omission), how long requests waited inside oha for a free connection,
      and, for the slowest 100 ms windows beside three ordinary ones, each
      process's CPU and run-queue wait in that window

A window where the proxy's threads wait for a CPU as long as they run, and
the load generator and upstream do too, is CPU contention; a window where
the proxy runs flat out alone is the proxy's own work; a window where
nobody runs is waiting on something else (a timer, a lock, the network).
"""
import collections
import json
import os
import sqlite3
import sys
import time

from schedstat import children  # this folder's: nginx's workers count too


def sample(secs, out, pids):
    files = {}
    for pid in pids + [c for p in pids for c in children(p)]:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    comm = f.read().strip()
                files[f"{comm}[{pid}]"
                      + f"/{tid}"] = open(f"/proc/{pid}/task/{tid}/schedstat", "rb", buffering=0)
            except OSError:
                continue
    rows, start = [], time.monotonic()
    while (now := time.monotonic() - start) < secs:
        row = [now]
        for f in files.values():
            try:
                f.seek(0)
                run, wait = f.read().split()[:2]
                row.append((int(run), int(wait)))
            except (OSError, ValueError):
                row.append((0, 0))  # the thread ended
        rows.append(row)
        time.sleep(0.01)
    with open(out, "w") as f:
        json.dump({"threads": list(files), "rows": rows}, f)


def report(samples_path, db_path, label=""):
    with open(samples_path) as f:
        s = json.load(f)
    db = sqlite3.connect(db_path)
    reqs = db.execute("SELECT start_latency_correction, start, end FROM oha").fetchall()
    if not reqs:
        sys.exit("no requests in " + db_path)
    t0 = min(r[0] for r in reqs)
    lat = sorted(e - sched for sched, _, e in reqs)
    queued = sorted(st - sched for sched, st, _ in reqs)
    pct = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3
    slow, total, worst = collections.Counter(), collections.Counter(), collections.defaultdict(float)
    for sched, _, end in reqs:
        w = int((sched - t0) * 10)
        total[w] += 1
        worst[w] = max(worst[w], end - sched)
        if end - sched > 0.005:
            slow[w] += 1
    print(f"{label} {len(reqs)} requests: p50 {pct(lat, .5):.2f} ms, p99 {pct(lat, .99):.2f}, "
          f"p99.9 {pct(lat, .999):.2f}; waited in oha for a connection: p99 {pct(queued, .99):.2f} ms; "
          f"requests over 5 ms in {len(slow)} of {len(total)} 100 ms windows")
    # The sampler's clock starts with oha's (both within ~50 ms).
    procs = sorted({name.split("/")[0] for name in s["threads"]})
    use = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0]))
    for a, b in zip(s["rows"], s["rows"][1:]):
        w = int(a[0] * 10)
        for i, name in enumerate(s["threads"]):
            acc = use[w][name.split("/")[0]]
            acc[0] += b[i + 1][0] - a[i + 1][0]
            acc[1] += b[i + 1][1] - a[i + 1][1]
    shown = [w for w, _ in slow.most_common(6)]
    shown += [w for w in sorted(total) if w not in slow and w in use][:3]
    print("window    >5ms/all  max ms | " + " | ".join(f"{p}: run/wait ms" for p in procs))
    for w in shown:
        cells = " | ".join(f"{use[w][p][0] / 1e6:5.1f} / {use[w][p][1] / 1e6:5.1f}" for p in procs)
        print(f"{w / 10:5.1f} s {slow[w]:5d}/{total[w]:<5d} {worst[w] * 1e3:6.1f} | {cells}")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "sample":
        sample(float(sys.argv[2]), sys.argv[3], sys.argv[4:])
    elif len(sys.argv) in (4, 5) and sys.argv[1] == "report":
        report(*sys.argv[2:])
    else:
        sys.exit(__doc__)
