#!/usr/bin/env python3
"""bench/plot.py REPORT_JSON OUT_PNG — the picture of a bench/run.sh run:
req/s and CPU µs/request per candidate (coloured by pair), and latency at a
constant rate (p99 and p99.9 against the offered rate, nginx vs doorward
logged in).
Needs matplotlib (bench/requirements.txt); bench/run.sh installs it.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"defaults": "#1f77b4", "one": "#ff7f0e", "-": "#7f7f7f"}


def main():
    report = json.load(open(sys.argv[1]))
    med, rate = report["medians"], report["rate"]
    names = list(med)
    # modauth runs Apache's stock MPM settings: a peer, not one of the pairs.
    colours = [COLOURS["-" if n.startswith("modauth") else med[n].get("pair", "-")] for n in names]

    panels = 3 if rate else 2
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 5.5))
    for ax, key, title in ((axes[0], "rps", "throughput, req/s (higher is better)"),
                           (axes[1], "cpu", "CPU µs per request (lower is better)")):
        values = [med[n][key] for n in names]
        bars = ax.bar(range(len(names)), values, color=colours)
        ax.bar_label(bars, labels=[f"{v:.0f}" if key == "rps" else f"{v:.1f}" for v in values], fontsize=7)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        if key == "cpu" and max(values) > 20 * max(min(values), 1e-9):
            ax.set_yscale("log")
            title += ", log scale"
        ax.set_title(title, fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLOURS.values()]
    axes[1].legend(handles, ["pair: defaults (nginx auto / doorward as shipped)", "pair: one (1 worker / 1 thread)",
                             "upstream alone; Apache + mod_auth_openidc"],
                   fontsize=7, loc="upper left")

    if rate:
        # The latency curve: p99 (solid) and p99.9 (dotted) against the
        # offered rate, one colour per candidate; hollow marks where the
        # rate was not held (the latency there is queueing).
        ax = axes[2]
        names = list(dict.fromkeys(r["name"] for r in rate))
        for i, name in enumerate(names):
            mine = sorted((r for r in rate if r["name"] == name), key=lambda r: r["rate"])
            xs = [r["rate"] for r in mine]
            colour = f"C{i}"
            for mark, style in (("p99", "-"), ("p999", ":")):
                ax.plot(xs, [r[mark] for r in mine], style, color=colour,
                        label=f"{name} {'p99.9' if mark == 'p999' else 'p99'}")
                ax.scatter(xs, [r[mark] for r in mine], color=colour,
                           facecolors=[colour if r["held"] else "none" for r in mine], zorder=3)
        ax.set_xlabel("offered rate, req/s (hollow: not held)")
        ax.set_yscale("log")
        ax.set_ylabel("latency, ms (log)")
        ax.set_title("latency at a constant rate (medians of rounds)", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)

    fig.suptitle("doorward bench/run.sh (one run on a shared, loaded machine: compare ratios, not absolutes)", fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    print(f"written {sys.argv[2]}")


if __name__ == "__main__":
    main()
