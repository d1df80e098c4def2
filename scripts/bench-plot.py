#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR MIT
"""Plots the benchmark report: for every row with a ratio column ("median (min-max)"),
ours / C as a bar at the median with the min-max spread, grouped by section, and the line
at 1.0. Usage: bench-plot.py results.md out.png"""

import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RATIO = re.compile(r"^([0-9.]+) \(([0-9.]+)-([0-9.]+)\)$")


def rows(path):
    """(section, label, median, low, high) for each table row that has a ratio cell."""
    section = ""
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("### "):
            section = line[4:]
            continue
        if not line.startswith("|") or line.startswith("|--"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        # The ratio is the last "median (min-max)" cell (the IOPS cells come before it).
        found = [m for m in (RATIO.match(c) for c in cells) if m]
        if found:
            label = " ".join(x for x in cells[:2] if x)
            med, lo, hi = (float(g) for g in found[-1].groups())
            out.append((section, label, med, lo, hi))
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    data = rows(src)
    if not data:
        sys.exit("no ratio rows in " + src)
    labels = [f"{s}: {l}" for s, l, *_ in data]
    med = [d[2] for d in data]
    err = [[d[2] - d[3] for d in data], [d[4] - d[2] for d in data]]
    colors = []
    for _, _, m, lo, hi in data:
        if lo == hi == 1.0:
            colors.append("tab:gray")
        elif lo >= 1.0:
            colors.append("tab:green")
        elif hi < 1.0:
            colors.append("tab:red")
        else:
            colors.append("tab:gray")
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(data) + 1.5))
    y = range(len(data))
    ax.barh(y, med, xerr=err, color=colors, capsize=2)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("orion / C (median of interleaved runs, bars: min-max)")
    ax.set_title("orion_dm vs the C targets: green faster, red slower, gray inconclusive or same")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main()
