#!/usr/bin/env python3
"""Draws latency percentiles per topology from a weft-bench results.json.

    plot.py results.json latency.png

One panel per open-loop workload; for each topology, bars for p50, p99 and
p99.9 (log scale, microseconds).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PERCENTILES = [("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")]


def main(src, dst):
    with open(src) as f:
        results = json.load(f)
    topologies = [t for t in results["topologies"] if t["available"]]
    workloads = []
    for t in topologies:
        for r in t["runs"]:
            if r.get("open_loop") and r.get("latency") and r["workload"] not in workloads:
                workloads.append(r["workload"])
    if not workloads:
        print("no open-loop latency to plot", file=sys.stderr)
        return 1
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.2 * len(workloads), 4.6), squeeze=False)
    width = 0.8 / len(PERCENTILES)
    for ax, workload in zip(axes[0], workloads):
        names, values = [], {key: [] for key, _ in PERCENTILES}
        for t in topologies:
            run = next((r for r in t["runs"] if r["workload"] == workload and r.get("latency")), None)
            if run is None:
                continue
            names.append(t["id"])
            for key, _ in PERCENTILES:
                values[key].append(run["latency"][key])
        for i, (key, label) in enumerate(PERCENTILES):
            xs = [j + (i - 1) * width for j in range(len(names))]
            ax.bar(xs, values[key], width, label=label)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("latency (µs, log scale)")
        ax.set_title(workload)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].legend()
    m = results["machine"]
    fig.suptitle(
        f"Weft benchmark ({results['settings']['mode']}), {m['nproc']} CPUs, {m['date']} — "
        "open loop, coordinated-omission corrected"
    )
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(dst)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
