#!/usr/bin/python3
"""Draws the pictures of `overlap-bench report` (docs/ARCHITECTURE.md §7.4).

Usage: report_plots.py --out DIR --result RESULT.json [--trend LABEL=PATH ...]

Writes into DIR, from an overlap-bench/result/v1 document:
  e2e_by_method.png        end-to-end time per method (its best case), stacked: compute as
                           without overlap, the method's chunking cost, exposed communication
  heatmap_<method>.png     exposed comm over CDMC x SM margin, one panel per launch order
  diagnosis.png            the exposed time of each case split into its causes
  timeline_best.png, timeline_worst.png   the overlapped timelines the result kept
  trend.png                best end-to-end time per method across the --trend results, in order
and from an overlap-bench/step/v1 document the pictures of scripts/step_plots.py (breakdown.png,
diagnosis.png, throughput.png; no trend), and prints one line per picture:
KIND<TAB>FILE<TAB>CAPTION (the report's manifest).
Every title says SIMULATED when the numbers come from the simulator. Exit 2 on a bad input file,
3 when matplotlib is missing (Debian: apt-get install python3-matplotlib; run /usr/bin/python3).
"""
import argparse
import json
import math
import os
import sys

from plot_common import import_pyplot, is_step, load, save, short, text, title
from plot_common import varying_axes as varying_params
import plot_common
import step_plots

AXES = ["method", "cdmc", "order", "sm_margin", "comm_ctas", "priority"]
KIND_COLORS = {"gemm": "#4c72b0", "elementwise": "#a0a0a0", "delay": "#d0d0d0",
               "collective": "#dd8452", "p2p": "#55a868"}


def varying_axes(cases):
    return varying_params(cases, AXES)


def valid(cases):
    return [c for c in cases if c.get("wrong", 0) == 0]


def e2e_by_method(doc, plt, out_dir, written):
    best = {}
    for c in valid(doc["cases"]):
        m = c["params"].get("method")
        if m is not None and (m not in best or c["overlapped_ms"]["median"] < best[m]["overlapped_ms"]["median"]):
            best[m] = c
    if not best:
        return
    methods = sorted(best, key=lambda m: (m != "none", m))
    none = best.get("none")
    base = none["compute_ms"]["median"] if none else None
    fig, ax = plt.subplots(figsize=(2.2 * len(methods) + 4, 5))
    for i, m in enumerate(methods):
        c = best[m]
        compute, exposed = c["compute_ms"]["median"], c["exposed_comm_ms"]
        plain = min(compute, base) if base is not None else compute
        chunk = compute - plain
        ax.bar(i, plain, color="#4c72b0")
        ax.bar(i, chunk, bottom=plain, color="#9467bd", hatch="//")
        ax.bar(i, max(exposed, 0), bottom=compute, color="#dd8452")
        total = c["overlapped_ms"]["median"]
        note = f"{total:.3f} ms"
        if none and m != "none":
            gain = 100 * (none["overlapped_ms"]["median"] - total) / none["overlapped_ms"]["median"]
            note += f"\n{abs(gain):.1f} % {'faster' if gain >= 0 else 'slower'} than none"
        ax.annotate(note, (i, total), textcoords="offset points", xytext=(0, 4), ha="center",
                    va="bottom", fontsize=9)
    others = [k for k in varying_axes(doc["cases"]) if k != "method"]
    ax.set_xticks(range(len(methods)), [f"{m}\n{short(best[m], others) if m != 'none' else ''}"
                                        for m in methods], fontsize=8)
    ax.set_ylabel("time per iteration (ms), overlapped variant")
    ax.set_ylim(0, max(c["overlapped_ms"]["median"] for c in best.values()) * 1.18)
    legend = [plt.Rectangle((0, 0), 1, 1, color="#4c72b0"),
              plt.Rectangle((0, 0), 1, 1, facecolor="#9467bd", hatch="//"),
              plt.Rectangle((0, 0), 1, 1, color="#dd8452")]
    ax.legend(legend, ["compute, as without overlap", "chunking cost: compute beyond no overlap",
                       "exposed communication"], fontsize=8, loc="upper center",
              bbox_to_anchor=(0.5, -0.16), ncol=3)
    title(ax, "End to end per method (its best case): compute + exposed communication", doc)
    save(fig, out_dir, "e2e_by_method.png", "e2e",
         "End-to-end time per method, best case of each: compute as without overlap, the "
         "method's chunking cost, and the exposed communication", written)
    plt.close(fig)


def heatmap(doc, method, cases, plt, np, out_dir, written):
    orders = sorted({text(c["params"].get("order", "-")) for c in cases})
    cdmcs = sorted({c["params"]["cdmc"] for c in cases})
    margins = sorted({c["params"]["sm_margin"] for c in cases}, key=lambda v: (isinstance(v, str), v if not isinstance(v, str) else 0))
    grids = []
    for o in orders:
        g = np.full((len(margins), len(cdmcs)), np.nan)
        for c in cases:
            if text(c["params"].get("order", "-")) != o:
                continue
            r, k = margins.index(c["params"]["sm_margin"]), cdmcs.index(c["params"]["cdmc"])
            v = c["exposed_comm_ms"]
            g[r, k] = v if math.isnan(g[r, k]) else min(g[r, k], v)
        grids.append(g)
    lo = np.nanmin([np.nanmin(g) for g in grids])
    hi = np.nanmax([np.nanmax(g) for g in grids])
    fig, axes = plt.subplots(1, len(orders), figsize=(1.1 * len(cdmcs) * len(orders) + 3.2 * len(orders), 0.5 * len(margins) + 3),
                             squeeze=False)
    cmap = plt.get_cmap("YlOrRd").copy()
    cmap.set_bad("lightgray")
    for ax, o, g in zip(axes[0], orders, grids):
        im = ax.imshow(np.ma.masked_invalid(g), cmap=cmap, vmin=lo, vmax=hi, aspect="auto", origin="lower")
        for r in range(len(margins)):
            for k in range(len(cdmcs)):
                if not math.isnan(g[r, k]):
                    dark = hi > lo and (g[r, k] - lo) / (hi - lo) > 0.6
                    ax.text(k, r, f"{g[r, k]:.3f}", ha="center", va="center", fontsize=8,
                            color="white" if dark else "black")
        ax.set_xticks(range(len(cdmcs)), [text(c) for c in cdmcs])
        ax.set_yticks(range(len(margins)), [text(m) for m in margins])
        ax.set_xlabel("CUDA_DEVICE_MAX_CONNECTIONS")
        ax.set_ylabel("GEMM SM margin (SMs)")
        ax.set_title(f"order = {o}" if o != "-" else "", fontsize=10)
    fig.colorbar(im, ax=list(axes[0]), label="exposed comm (ms)")
    title(fig, f"method {method}: exposed communication (ms) over CDMC x SM margin", doc)
    save(fig, out_dir, f"heatmap_{method}.png", "heatmap",
         f"Method {method}: exposed communication (ms) over CDMC x GEMM SM margin, one panel per "
         "launch order (the best case of each cell over the other axes)", written)
    plt.close(fig)


def heatmaps(doc, plt, np, out_dir, written):
    by_method = {}
    for c in valid(doc["cases"]):
        if "cdmc" in c["params"] and "sm_margin" in c["params"]:
            by_method.setdefault(text(c["params"].get("method", "all")), []).append(c)
    for method, cases in sorted(by_method.items()):
        if len({c["params"]["cdmc"] for c in cases}) * len({json.dumps(c["params"]["sm_margin"]) for c in cases}) > 1:
            heatmap(doc, method, cases, plt, np, out_dir, written)


def diagnosis_bars(doc, plt, out_dir, written):
    plot_common.diagnosis_bars(doc, plt, out_dir, written, "exposed_comm_ms",
                               varying_axes(doc["cases"]), "communication was exposed")


def timeline(doc, case, which, plt, out_dir, written):
    t = case["timeline"]
    fig, ax = plt.subplots(figsize=(13, 0.7 * len(t["streams"]) + 2))
    for op in t["ops"]:
        start, end = op["start_us"] / 1000, op["end_us"] / 1000
        ax.barh(op["stream"], max(end - start, 1e-4), left=start, height=0.6,
                color=KIND_COLORS.get(op["kind"], "#333333"),
                edgecolor="black" if op["critical"] else "none", linewidth=0.8)
    ax.set_yticks(range(len(t["streams"])), t["streams"])
    ax.invert_yaxis()
    ax.set_xlabel("time in the iteration (ms)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in KIND_COLORS.values()]
    handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black"))
    ax.legend(handles, list(KIND_COLORS) + ["critical path"], fontsize=8, ncol=6,
              loc="upper center", bbox_to_anchor=(0.5, -0.25))
    axes = varying_axes(doc["cases"])
    title(ax, f"{which} case: {short(case, axes)}: {case['overlapped_ms']['median']:.3f} ms, "
              f"exposed {case['exposed_comm_ms']:.3f} ms", doc)
    save(fig, out_dir, f"timeline_{which}.png", f"timeline_{which}",
         f"Timeline of the {which} case ({short(case, axes)}): the overlapped variant, one row per "
         "stream; outlined ops lie on the critical path", written)
    plt.close(fig)


def timelines(doc, plt, out_dir, written):
    kept = [c for c in valid(doc["cases"]) if c.get("timeline")]
    if not kept:
        return
    best = min(kept, key=lambda c: c["overlapped_ms"]["median"])
    worst = max(kept, key=lambda c: c["overlapped_ms"]["median"])
    timeline(doc, best, "best", plt, out_dir, written)
    if worst is not best:
        timeline(doc, worst, "worst", plt, out_dir, written)


def trend(points, plt, out_dir, written):
    if len(points) < 2:
        return
    labels = [p[0] for p in points]
    docs = [p[1] for p in points]
    methods = sorted({text(c["params"].get("method", "all")) for d in docs for c in d["cases"]})
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(points) + 3), 4.8))
    for m in methods:
        ys = []
        for d in docs:
            times = [c["overlapped_ms"]["median"] for c in valid(d["cases"])
                     if text(c["params"].get("method", "all")) == m]
            ys.append(min(times) if times else float("nan"))
        line, = ax.plot(range(len(points)), ys, marker="o", label=f"best {m}")
        for x, (y, d) in enumerate(zip(ys, docs)):
            if d.get("simulated") and not math.isnan(y):
                ax.plot(x, y, marker="o", markerfacecolor="white", color=line.get_color())
    ax.set_xticks(range(len(points)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("best overlapped time (ms)")
    ax.legend(fontsize=8, title="hollow: simulated", title_fontsize=8)
    simulated = sum(1 for d in docs if d.get("simulated"))
    title(ax, f"Trend: best end-to-end time per method over {len(points)} results"
              f" ({simulated} simulated)", simulated > 0)
    save(fig, out_dir, "trend.png", "trend",
         "Best end-to-end (overlapped) time per method across the results, oldest first", written)
    plt.close(fig)


def draw(doc, plt, np, out_dir):
    """Every picture of the document; returns [(kind, file, caption)]."""
    written = []
    if is_step(doc):
        step_plots.draw(doc, plt, out_dir, written)
        return written
    e2e_by_method(doc, plt, out_dir, written)
    heatmaps(doc, plt, np, out_dir, written)
    diagnosis_bars(doc, plt, out_dir, written)
    timelines(doc, plt, out_dir, written)
    return written


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--trend", action="append", default=[], metavar="LABEL=PATH")
    args = parser.parse_args(argv)
    doc = load(args.result)
    points = []
    for spec in args.trend:
        label, _, path = spec.partition("=")
        points.append((label, load(path)))
    plt, np = import_pyplot()
    os.makedirs(args.out, exist_ok=True)
    written = draw(doc, plt, np, args.out)
    trend(points, plt, args.out, written)
    for kind, name, caption in written:
        print(f"{kind}\t{name}\t{caption}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
