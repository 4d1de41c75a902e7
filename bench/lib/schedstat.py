#!/usr/bin/env python3
"""Where a constant-rate run's time went, thread by thread, from the
kernel's scheduler statistics (/proc/PID/task/TID/schedstat: nanoseconds
on a CPU, nanoseconds runnable but waiting for one, and slices run).

The wait column is what a p99 is made of when a box is short of CPU: a
request whose thread is runnable but not running waits exactly that long,
however fast the code is once it runs.

  schedstat.py snap PID... > FILE   every thread of the PIDs and their children,
                                    then every other thread
  schedstat.py diff BEFORE AFTER REQUESTS
      one line, per request in microseconds (tab-separated): the PIDs' CPU,
      their run-queue wait, their slices, the thread that waited most, and
      the whole box's wait and CPU
"""
import os
import sys


def threads(pid):
    base = f"/proc/{pid}/task"
    try:
        tids = os.listdir(base)
    except OSError:
        return
    for tid in tids:
        try:
            with open(f"{base}/{tid}/schedstat") as f:
                run, wait, slices = (int(x) for x in f.read().split()[:3])
            with open(f"{base}/{tid}/comm") as f:
                comm = f.read().strip()
        except (OSError, ValueError):
            continue  # the thread ended between listdir and open
        yield tid, comm, run, wait, slices


def children(pid):
    """Direct children (nginx's and Apache's workers), as cpu_ticks counts them."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return f.read().split()
    except OSError:
        return []


def snap(pids):
    own = set()
    for pid in pids + [c for p in pids for c in children(p)]:
        for tid, comm, run, wait, slices in threads(pid):
            own.add(tid)
            print(f"own\t{tid}\t{comm}\t{run}\t{wait}\t{slices}")
    # Every other thread on the box (the load generator, the upstream, the
    # rest): /proc/schedstat's per-CPU sums are not in every kernel.
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for tid, comm, run, wait, slices in threads(pid):
            if tid not in own:
                print(f"other\t{tid}\t{comm}\t{run}\t{wait}\t{slices}")


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            kind, key, comm, run, wait, slices = line.rstrip("\n").split("\t")
            rows[(kind, key)] = (comm, int(run), int(wait), int(slices))
    return rows


def diff(before_path, after_path, requests):
    before, after = load(before_path), load(after_path)
    requests = max(int(requests), 1)
    run = wait = slices = 0
    box_wait = box_run = 0
    worst = ("-", 0)
    for key, (comm, r1, w1, s1) in after.items():
        comm0, r0, w0, s0 = before.get(key, (comm, 0, 0, 0))
        dr, dw, ds = r1 - r0, w1 - w0, s1 - s0
        box_run += dr
        box_wait += dw
        if key[0] == "other":
            continue
        run += dr
        wait += dw
        slices += ds
        if dw > worst[1]:
            worst = (comm, dw)
    us = lambda ns: ns / 1000 / requests
    print(
        f"{us(run):.2f}\t{us(wait):.2f}\t{slices / requests:.3f}\t"
        f"{worst[0]} {us(worst[1]):.2f}\t{us(box_wait):.2f}\t{us(box_run):.2f}"
    )


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "snap":
        snap(sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "diff":
        diff(*sys.argv[2:])
    else:
        sys.exit(__doc__)
