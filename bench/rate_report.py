"""bench/rate_report.py — latency at a constant rate, for bench/report.py:
medians over interleaved rounds per candidate and rate, each doorward
candidate's p99 against nginx-auto's at the same rate, and the issue 22
target (p99 <= 1.5x nginx at 5k, 10k and 15k req/s where both held the
rate). Standard library only.
"""
import statistics as st

# Issue 22. Never loosen it to make a run pass.
P99_AT_RATE = 1.5
# A rate is held when the median achieved rate is at least this share of
# the target; below it, latency (counted from each request's scheduled
# send time) is mostly queueing.
HELD = 0.95
FIELDS = ("round", "name", "rate", "achieved", "p50", "p99", "p999", "cpu", "errors", "load",
          # From the scheduler's counters (bench/lib/schedstat.py), µs per request:
          "run", "wait", "slices", "worst", "box_wait", "box_run")
SCHED = ("run", "wait", "slices", "box_wait", "box_run")


def summarise(rows):
    """One entry per (candidate, rate), in the order first measured."""
    keys = list(dict.fromkeys((r[1], int(r[2])) for r in rows))
    out = []
    for name, rate in keys:
        mine = [dict(zip(FIELDS, r)) for r in rows if r[1] == name and int(r[2]) == rate]
        med = {k: st.median(float(m[k]) for m in mine) for k in ("achieved", "p50", "p99", "p999", "cpu")}
        if all("box_run" in m for m in mine):
            med.update({k: st.median(float(m[k]) for m in mine) for k in SCHED})
            med["worst"] = max((m["worst"] for m in mine), key=lambda w: float(w.rsplit(" ", 1)[1]))
        out.append({
            "name": name, "rate": rate, "rounds": len(mine), **med,
            "held": med["achieved"] >= HELD * rate,
            "p99_rounds": [float(m["p99"]) for m in mine],
            "errors": sorted({m["errors"] for m in mine if m["errors"] != "-"}),
        })
    return out


def section(summary, note=""):
    """The markdown lines of the section, and the PASS/MISS checks."""
    if not summary:
        return ["### Latency at a constant rate", "", note or "not run"], []
    nginx = {s["rate"]: s for s in summary if s["name"] == "nginx-auto"}
    lines = ["### Latency at a constant rate (oha, latency-corrected; medians of interleaved rounds)", "",
             "| req/s | candidate | achieved | p50 ms | p99 ms | p99.9 ms | CPU µs/req | p99 ×nginx | p99.9 ×nginx | p99 per round | errors |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    checks = []
    for s in sorted(summary, key=lambda s: (s["rate"], s["name"] != "nginx-auto", s["name"])):
        base = nginx.get(s["rate"])
        ratio = ["", ""]
        if base and base is not s and base["p99"] > 0 and base["p999"] > 0:
            ratio = [f"{s['p99'] / base['p99']:.2f}", f"{s['p999'] / base['p999']:.2f}"]
            if s["held"] and base["held"]:
                value = s["p99"] / base["p99"]
                checks.append((f"p99 at {s['rate']} req/s, {s['name']} / nginx-auto", f"{value:.2f}x",
                               value <= P99_AT_RATE, f"<= {P99_AT_RATE}x"))
            else:
                held_by = [x["name"] for x in (s, base) if not x["held"]]
                checks.append((f"p99 at {s['rate']} req/s, {s['name']} / nginx-auto", "rate not held by " + ", ".join(held_by),
                               False, f"<= {P99_AT_RATE}x"))
        rounds = ", ".join(f"{p:.2f}" for p in s["p99_rounds"])
        lines.append(f"| {s['rate']} | {s['name']} | {s['achieved']:.0f}{'' if s['held'] else ' (not held)'} | {s['p50']:.3f} "
                     f"| {s['p99']:.3f} | {s['p999']:.3f} | {s['cpu']:.2f} | {ratio[0]} | {ratio[1]} | {rounds} "
                     f"| {'; '.join(s['errors']) or '-'} |")
    if any("wait" in s for s in summary):
        lines += ["", "Where the time went (the scheduler's counters over each run's steady middle, µs per request: "
                  "CPU and run-queue wait of the candidate's threads, the thread that waited most, and the whole "
                  "box's wait and CPU, load generator and upstream included)", "",
                  "| req/s | candidate | CPU | run-queue wait | slices/req | waited most | box wait | box CPU |",
                  "|---:|---|---:|---:|---:|---|---:|---:|"]
        for s in sorted(summary, key=lambda s: (s["rate"], s["name"] != "nginx-auto", s["name"])):
            if "wait" in s:
                lines.append(f"| {s['rate']} | {s['name']} | {s['run']:.1f} | {s['wait']:.1f} | {s['slices']:.3f} "
                             f"| {s['worst']} | {s['box_wait']:.1f} | {s['box_run']:.1f} |")
    if any(not s["held"] for s in summary):
        lines += ["", f"A rate is held when the median achieved rate is at least {HELD:.0%} of it. Where it is not, "
                  "latency is mostly queueing (counted from each request's scheduled send time): compare only rows "
                  "whose rate was held."]
    return lines, checks
