#!/usr/bin/python3
"""Draws the pictures of `overlap-bench analyze --report DIR` (docs/ANALYZE.md §5).

Usage: analyze_plots.py --out DIR --analysis ANALYSIS.json [--timeline TIMELINE.json]

Writes into DIR, from an overlap-bench/analysis/v1 document:
  steps_strip.png      one strip per rank along its steps: each step's compute, exposed
                       communication and the rest of its span (the first 64 ranks)
  exposed_by_dim.png   each rank's exposed communication per parallel dimension (per collective
                       kind without a layout)
and from the timelines `analyze --report` writes beside it (timeline.json):
  kernel_strip.png     one strip per rank over its median step, kernel by kernel: when compute
                       runs, when communication runs, and when communication runs alone
and prints one line per picture: KIND<TAB>FILE<TAB>CAPTION (the report's manifest). Every title
says MEASURED and names the trace files. Exit 2 on a bad input file, 3 without matplotlib.
"""
import argparse
import os
import sys

from plot_common import fail, import_pyplot, read_json, save

SCHEMA = "overlap-bench/analysis/v1"
COLORS = {"compute": "#4c72b0", "exposed": "#c44e52", "rest": "#d9d9d9"}
MAX_RANKS = 64


def load(path):
    doc = read_json(path)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not doc.get("ranks"):
        fail(2, f"{path}: not an {SCHEMA} document")
    return doc


def measured(doc):
    files = doc["inputs"]
    names = ", ".join(os.path.basename(f) for f in files[:3])
    more = f" +{len(files) - 3} more" if len(files) > 3 else ""
    return f"MEASURED from {names}{more}"


def parts_of(entry):
    """(compute, exposed, rest) of a rank or a step, in ms."""
    compute, exposed = entry["compute_ms"], entry["exposed_comm_ms"]
    return compute, exposed, max(0.0, entry["span_ms"] - compute - exposed)


def steps_strip(doc, plt, out_dir, written):
    ranks = doc["ranks"][:MAX_RANKS]
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.3 * len(ranks)))
    for y, r in enumerate(ranks):
        x = 0.0
        for entry in r["steps"] or [r]:
            for part, ms in zip(("compute", "exposed", "rest"), parts_of(entry)):
                ax.barh(y, ms, left=x, color=COLORS[part], edgecolor="white", linewidth=0.3)
                x += ms
    ax.set_yticks(range(len(ranks)), [f"rank {r['rank']}" for r in ranks])
    ax.invert_yaxis()
    ax.set_xlabel("ms (steps one after another)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    ax.legend(handles, ["compute", "exposed communication", "rest of the step"],
              loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, fontsize=8)
    ax.set_title(f"Per rank, step by step\n{measured(doc)}", fontsize=10)
    save(fig, out_dir, "steps_strip.png", "steps_strip",
         "Each rank's steps: compute, exposed communication, and the rest of the step", written)
    plt.close(fig)


def exposed_by_dim(doc, plt, out_dir, written):
    ranks = doc["ranks"][:MAX_RANKS]
    key = "by_dim" if any(r["by_dim"] for r in ranks) else "by_kind"
    parts = sorted({p for r in ranks for p in r[key]})
    if not parts:
        return
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(ranks) + 2), 4))
    bottom = [0.0] * len(ranks)
    for part in parts:
        values = [r[key].get(part, {}).get("exposed_ms", 0.0) for r in ranks]
        ax.bar(range(len(ranks)), values, bottom=bottom, label=part)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xticks(range(len(ranks)), [str(r["rank"]) for r in ranks])
    ax.set_xlabel("rank")
    ax.set_ylabel("exposed communication, ms")
    ax.legend(fontsize=8)
    what = "parallel dimension" if key == "by_dim" else "collective kind"
    ax.set_title(f"Exposed communication per {what}\n{measured(doc)}", fontsize=10)
    save(fig, out_dir, "exposed_by_dim.png", "exposed_by_dim",
         f"Each rank's exposed communication per {what}", written)
    plt.close(fig)


def kernel_strip(path, plt, out_dir, written):
    doc = read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("ranks"), list):
        fail(2, f"{path}: not an analyze timeline file")
    ranks = [r for r in doc["ranks"] if r["compute_ms"] or r["comm_ms"]]
    if not ranks:
        return
    lanes = (("compute_ms", "compute"), ("comm_ms", "communication"),
             ("exposed_ms", "exposed communication"))
    colors = (COLORS["compute"], "#dd8452", COLORS["exposed"])
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.6 * len(ranks)))
    for y, r in enumerate(ranks):
        for k, ((key, _), color) in enumerate(zip(lanes, colors)):
            bars = [(a, b - a) for a, b in r[key]]
            ax.broken_barh(bars, (y + k * 0.28 - 0.4, 0.25), facecolors=color, linewidth=0)
    ax.set_yticks(range(len(ranks)), [
        f"rank {r['rank']}" + (f" step {r['step']}" if r["step"] is not None else "")
        for r in ranks])
    ax.invert_yaxis()
    ax.set_xlabel("ms from the step's first GPU activity (one GPU of the rank)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors]
    ax.legend(handles, [name for _, name in lanes], loc="lower center",
              bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    cut = " (first intervals only)" if any(r["truncated"] for r in ranks) else ""
    files = ", ".join(os.path.basename(f) for f in doc["inputs"][:3])
    ax.set_title(f"Each rank's median step, kernel by kernel{cut}\nMEASURED from {files}",
                 fontsize=10, pad=22)
    save(fig, out_dir, "kernel_strip.png", "kernel_strip",
         "Each rank's median step: compute, communication, and communication no compute hides",
         written)
    plt.close(fig)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--analysis", required=True)
    parser.add_argument("--timeline")
    args = parser.parse_args(argv)
    doc = load(args.analysis)
    plt, _ = import_pyplot()
    os.makedirs(args.out, exist_ok=True)
    written = []
    steps_strip(doc, plt, args.out, written)
    exposed_by_dim(doc, plt, args.out, written)
    if args.timeline:
        kernel_strip(args.timeline, plt, args.out, written)
    for kind, name, caption in written:
        print(f"{kind}\t{name}\t{caption}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
