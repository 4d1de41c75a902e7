#!/usr/bin/env python3
"""bench/report.py — the report of bench/run.sh: medians per candidate,
ratios within each pair (defaults: nginx-auto vs doorward as shipped; one:
nginx-1 vs doorward worker_threads = 1), PASS/MISS against the targets of
issue 12, the mod_auth_openidc ratios, and latency at a constant rate
(bench/rate_report.py).
Prints it, writes the markdown (--md) and the numbers for bench/plot.py
(--json). Standard library only.
"""
import argparse
import json
import statistics as st

import rate_report

# Targets (issue 12). Never loosen one to make a run pass.
CPU_AUTH_OVER_PUBLIC_US = 1.5   # logged-in CPU/req minus public CPU/req
AUTH_TPUT = (0.9, 1.0)          # logged-in throughput / nginx (target, stretch)
AUTH_P99 = 2.0                  # logged-in p99 / nginx
PUBLIC_CPU = (1.1, 1.0)         # public CPU/req / nginx (target, stretch)
# A public request does less than a logged-in one, so its throughput and
# p99 targets are at least the logged-in ones.
PUBLIC_TPUT = (0.9, 1.0)
PUBLIC_P99 = 2.0
AUTH250_VS_AUTH = 0.85          # 250 groups / 2 groups throughput
AUTH250_TPUT = 0.75             # 250 groups / nginx (earlier target, kept)
AUTH_VS_PUBLIC = 0.9            # logged-in / public throughput (earlier target, kept)
PG_VS_SQLITE = 0.95             # doorward-auth-pg / doorward-auth throughput
RSS_IDLE_MB = 30.0
MODAUTH = {"doorward-auth": ("modauth", 4.0), "doorward-auth250": ("modauth250", 15.0)}

PAIR_NGINX = {"defaults": "nginx-auto", "one": "nginx-1"}


def read_tsv(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser()
    for arg in ("--results", "--rate", "--meta", "--rss", "--md", "--json"):
        ap.add_argument(arg, required=True)
    ap.add_argument("--setup", default="")
    ap.add_argument("--rate-note", default="")
    a = ap.parse_args()

    rows = read_tsv(a.results)
    meta = {r[0]: {"pair": r[1], "role": r[2], "setting": r[3]} for r in read_tsv(a.meta)}
    names = list(dict.fromkeys(r[1] for r in rows))
    med = {}
    for n in names:
        mine = [r for r in rows if r[1] == n]
        rps, p50, p99, cpu = (st.median(float(r[i]) for r in mine) for i in (2, 3, 4, 5))
        errors = sorted({r[6] for r in mine if r[6] != "-"})
        med[n] = {"rps": rps, "p50": p50, "p99": p99, "cpu": cpu, "errors": errors, **meta.get(n, {})}

    def nginx_of(n):
        x = PAIR_NGINX.get(med[n].get("pair", "-"))
        return med.get(x) if x and x != n else None

    # ---- the main table -------------------------------------------------
    table = ["| candidate | pair | worker setting | req/s | p50 ms | p99 ms | CPU µs/req | req/s ×nginx | CPU ×nginx | p99 ×nginx |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n, m in med.items():
        x = nginx_of(n)
        ratios = [f"{m['rps'] / x['rps']:.2f}", f"{m['cpu'] / x['cpu']:.2f}", f"{m['p99'] / x['p99']:.2f}"] if x else ["", "", ""]
        err = " (errors!)" if m["errors"] else ""
        table.append(f"| {n}{err} | {m.get('pair', '-')} | {m.get('setting', '')} | {m['rps']:.0f} | {m['p50']:.3f} | "
                     f"{m['p99']:.3f} | {m['cpu']:.2f} | " + " | ".join(ratios) + " |")

    # ---- targets --------------------------------------------------------
    checks = []

    def check(what, value, ok, target, stretch=None):
        s = "" if stretch is None else ("PASS" if stretch else "MISS")
        checks.append(f"| {what} | {value} | {target} | {'PASS' if ok else 'MISS'} | {s} |")

    rss = {}
    for name, when, kb in read_tsv(a.rss):
        rss[(name, when)] = int(kb) / 1024
    for pair, nx in PAIR_NGINX.items():
        sfx = "" if pair == "defaults" else "-1t"
        dw, da, db = f"doorward{sfx}", f"doorward-auth{sfx}", f"doorward-auth250{sfx}"
        tag = f"[{pair}]"
        x = med.get(nx)
        if x and dw in med:
            d = med[dw]
            check(f"{tag} CPU/req {dw}/{nx}", f"{d['cpu'] / x['cpu']:.2f}x", d["cpu"] / x["cpu"] <= PUBLIC_CPU[0],
                  f"<= {PUBLIC_CPU[0]}x (stretch {PUBLIC_CPU[1]}x)", d["cpu"] / x["cpu"] <= PUBLIC_CPU[1])
            check(f"{tag} throughput {dw}/{nx}", f"{d['rps'] / x['rps']:.2f}x", d["rps"] / x["rps"] >= PUBLIC_TPUT[0],
                  f">= {PUBLIC_TPUT[0]}x (stretch {PUBLIC_TPUT[1]}x)", d["rps"] / x["rps"] >= PUBLIC_TPUT[1])
            check(f"{tag} p99 {dw}/{nx}", f"{d['p99'] / x['p99']:.2f}x", d["p99"] / x["p99"] <= PUBLIC_P99, f"<= {PUBLIC_P99}x")
        if x and da in med:
            d = med[da]
            check(f"{tag} throughput {da}/{nx}", f"{d['rps'] / x['rps']:.2f}x", d["rps"] / x["rps"] >= AUTH_TPUT[0],
                  f">= {AUTH_TPUT[0]}x (stretch {AUTH_TPUT[1]}x)", d["rps"] / x["rps"] >= AUTH_TPUT[1])
            check(f"{tag} p99 {da}/{nx}", f"{d['p99'] / x['p99']:.2f}x", d["p99"] / x["p99"] <= AUTH_P99, f"<= {AUTH_P99}x")
        if x and db in med:
            d = med[db]
            check(f"{tag} throughput {db}/{nx}", f"{d['rps'] / x['rps']:.2f}x", d["rps"] / x["rps"] >= AUTH250_TPUT, f">= {AUTH250_TPUT}x")
        if da in med and dw in med:
            extra = med[da]["cpu"] - med[dw]["cpu"]
            check(f"{tag} CPU/req {da} minus {dw}", f"{extra:+.2f} µs", extra <= CPU_AUTH_OVER_PUBLIC_US,
                  f"<= {CPU_AUTH_OVER_PUBLIC_US} µs")
            for n in (da, db):
                if n in med:
                    own = med[n]["rps"] / med[dw]["rps"]
                    check(f"{tag} throughput {n}/{dw}", f"{own:.2f}x", own >= AUTH_VS_PUBLIC, f">= {AUTH_VS_PUBLIC}x")
        if da in med and db in med:
            r = med[db]["rps"] / med[da]["rps"]
            check(f"{tag} throughput {db}/{da}", f"{r:.2f}x", r >= AUTH250_VS_AUTH, f">= {AUTH250_VS_AUTH}x")
        if (dw, "idle") in rss:
            mb = rss[(dw, "idle")]
            check(f"{tag} RSS idle {dw}", f"{mb:.1f} MB", mb < RSS_IDLE_MB, f"< {RSS_IDLE_MB:.0f} MB")
    if "doorward-auth-pg" in med and "doorward-auth" in med:
        r = med["doorward-auth-pg"]["rps"] / med["doorward-auth"]["rps"]
        check("[defaults] throughput doorward-auth-pg/doorward-auth (SQLite)", f"{r:.2f}x", r >= PG_VS_SQLITE, f">= {PG_VS_SQLITE}x")
    if "doorward-auth-shared" in med and "doorward-auth" in med:
        # The runtime-shape study: the shipped per-core default must not be
        # worse than tokio's work-stealing runtime on either count.
        s, d = med["doorward-auth-shared"], med["doorward-auth"]
        check("[defaults] CPU/req doorward-auth (per-core) / doorward-auth-shared", f"{d['cpu'] / s['cpu']:.2f}x",
              d["cpu"] <= s["cpu"], "<= 1.0x")
        check("[defaults] p99 doorward-auth (per-core) / doorward-auth-shared", f"{d['p99'] / s['p99']:.2f}x",
              d["p99"] <= 2 * s["p99"], "<= 2x")
    for dn, (mn, goal) in MODAUTH.items():
        if dn in med and mn in med:
            r = med[dn]["rps"] / med[mn]["rps"]
            c = med[mn]["cpu"] / med[dn]["cpu"]
            check(f"throughput {dn}/{mn} (CPU/req {mn}/{dn}: {c:.1f}x)", f"{r:.2f}x", r >= goal, f">= {goal:.0f}x")
    # ---- latency at a constant rate ---------------------------------------
    rate_summary = rate_report.summarise(read_tsv(a.rate))
    rate_section, rate_checks = rate_report.section(rate_summary, a.rate_note)
    for label, value, ok, goal in rate_checks:
        check(label, value, ok, goal)

    if checks:
        checks = ["| target | value | goal | result | stretch |", "|---|---:|---|---|---|"] + checks
    rss_lines = [f"- {name} RSS {when}: {mb:.1f} MB" for (name, when), mb in sorted(rss.items())]
    if "doorward-auth-traced" in med and "doorward-auth" in med:
        # What traces cost when on (issue 24): reported, no target.
        t, d = med["doorward-auth-traced"], med["doorward-auth"]
        rss_lines.append(f"- traces on (every request sampled and exported): CPU/req {t['cpu']:.1f} µs vs {d['cpu']:.1f} µs off "
                         f"(+{t['cpu'] - d['cpu']:.1f} µs), throughput {t['rps'] / d['rps']:.2f}x, p99 {t['p99']:.2f} ms vs {d['p99']:.2f} ms")

    per_round = ["| round | candidate | req/s | p50 ms | p99 ms | CPU µs/req | errors | load 1-min |", "|---|---|---:|---:|---:|---:|---|---:|"]
    per_round += ["| " + " | ".join(r) + " |" for r in rows]
    md = "\n".join(["## Benchmark (medians)", "", a.setup, "",
                    "Ratios (×nginx) are within each pair: defaults = nginx `worker_processes auto` vs doorward as shipped; "
                    "one = nginx `worker_processes 1` vs doorward `worker_threads = 1`. "
                    "modauth = Apache httpd event MPM + mod_auth_openidc (server-cache sessions in shm, claims as headers), "
                    "listed under defaults for its stock MPM settings.", "",
                    *table, "", *checks, "", *rss_lines, "", *rate_section, "",
                    "<details><summary>per round</summary>", "", *per_round, "", "</details>", ""])
    print("\nper round:"); print("\n".join(per_round))
    print("\nmedians:"); print("\n".join(table)); print()
    print("\n".join(checks) if checks else "(no targets: they need a pair's nginx and doorward candidates)")
    print("\n".join(rss_lines))
    print(); print("\n".join(rate_section))
    with open(a.md, "w") as f:
        f.write(md)
    with open(a.json, "w") as f:
        json.dump({"setup": a.setup, "medians": med, "rate": rate_summary}, f, indent=1)
    print(f"\nwritten {a.md}")


if __name__ == "__main__":
    main()
