#!/usr/bin/python3
"""Plots an overlap-bench result document (schema overlap-bench/result/v1).

Usage: plot.py RESULT.json --out DIR

Writes PNGs into DIR:
  heatmap_exposed[_<params>].png  exposed comm (ms) over CUDA_DEVICE_MAX_CONNECTIONS x SM margin,
                                  one per combination of the other params (method, order, ...),
                                  from the cases whose params hold both `cdmc` and `sm_margin`;
  bars_exposed_by_method.png      exposed comm per overlap method (best case, range over cases),
                                  from the cases whose params hold `method`.
Titles say SIMULATED when the document is simulated, so a model plot is never shown as a
measurement. Exit 2 when RESULT.json is not a v1 result (the message names the file), 3 when
matplotlib is missing (Debian: apt-get install python3-matplotlib; run with /usr/bin/python3).
"""
import argparse
import json
import math
import os
import re
import sys

SCHEMA = "overlap-bench/result/v1"


def fail(code, message):
    print(f"plot.py: {message}", file=sys.stderr)
    sys.exit(code)


def load_result(path):
    """Reads `path` and checks the fields this script uses; exit 2 naming file and JSON path."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        fail(2, f"{path}: cannot open file: {e.strerror}")
    except json.JSONDecodeError as e:
        fail(2, f"{path}: invalid JSON: {e}")
    if not isinstance(doc, dict):
        fail(2, f"{path}: (top level): expected an object (not an overlap-bench result v1 document)")
    if doc.get("schema") != SCHEMA:
        fail(2, f"{path}: schema: expected \"{SCHEMA}\", got {json.dumps(doc.get('schema'))} "
                "(not an overlap-bench result v1 document)")
    if not isinstance(doc.get("simulated"), bool):
        fail(2, f"{path}: simulated: expected true or false")
    cases = doc.get("cases")
    if not isinstance(cases, list):
        fail(2, f"{path}: cases: expected an array")
    for i, c in enumerate(cases):
        where = f"{path}: cases[{i}]"
        if not isinstance(c, dict):
            fail(2, f"{where}: expected an object")
        if not isinstance(c.get("id"), str):
            fail(2, f"{where}.id: expected a string")
        if not isinstance(c.get("params"), dict):
            fail(2, f"{where}.params: expected an object")
        v = c.get("exposed_comm_ms")
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            fail(2, f"{where}.exposed_comm_ms: expected a number")
    return doc


def gpu_name(env):
    gpu = env.get("gpu")
    if isinstance(gpu, dict):
        return gpu.get("name", "")
    if isinstance(gpu, str):
        return gpu
    return env.get("gpu_name", "")


def provenance(doc):
    """Short origin text for titles: what produced the numbers."""
    env = doc.get("env") or {}
    backend = env.get("backend", "")
    gpu = gpu_name(env)
    if doc["simulated"]:
        text = "SIMULATED - model output, not a measurement"
    elif backend == "loopback":
        text = "loopback (no NVLink)"
    else:
        text = f"measured ({backend})" if backend else "measured"
    return f"{text}, {gpu}" if gpu else text


def sort_key(v):
    # Numbers in numeric order first, then anything else (null = unset) by its text.
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v), "")
    return (1, 0.0, json.dumps(v))


def label(v):
    if v is None:
        return "unset"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return v if isinstance(v, str) else json.dumps(v)


def slug(text):
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")[:120]


def heatmaps(doc, out_dir, plt):
    import numpy as np  # matplotlib depends on numpy, so it is there when matplotlib is
    cases = [c for c in doc["cases"] if "cdmc" in c["params"] and "sm_margin" in c["params"]]
    if not cases:
        return []
    # One heatmap per combination of the other params; only those that differ between groups
    # go into titles and file names.
    groups = {}
    for c in cases:
        rest = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in c["params"].items()
                            if k not in ("cdmc", "sm_margin")))
        groups.setdefault(rest, []).append(c)
    varying = set()
    keys = {k for g in groups for k, _ in g}
    for k in keys:
        values = {dict(g).get(k) for g in groups}
        if len(values) > 1:
            varying.add(k)

    written = []
    for rest, members in sorted(groups.items()):
        named = [(k, json.loads(v)) for k, v in rest if k in varying]
        cdmcs = sorted({json.dumps(c["params"]["cdmc"]) for c in members},
                       key=lambda s: sort_key(json.loads(s)))
        margins = sorted({json.dumps(c["params"]["sm_margin"]) for c in members},
                         key=lambda s: sort_key(json.loads(s)))
        grid = [[math.nan] * len(cdmcs) for _ in margins]
        ids = [[None] * len(cdmcs) for _ in margins]
        for c in members:
            r = margins.index(json.dumps(c["params"]["sm_margin"]))
            col = cdmcs.index(json.dumps(c["params"]["cdmc"]))
            v = float(c["exposed_comm_ms"])
            if ids[r][col] is not None:
                print(f"plot.py: note: cases {ids[r][col]} and {c['id']} share a cell; "
                      "showing the lower exposed comm", file=sys.stderr)
                v = min(v, grid[r][col])
            grid[r][col] = v
            ids[r][col] = c["id"]

        fig, ax = plt.subplots(figsize=(1.2 * len(cdmcs) + 3, 0.6 * len(margins) + 2.5))
        cmap = plt.get_cmap("YlOrRd").copy()
        cmap.set_bad("lightgray")
        data = np.ma.masked_invalid(np.array(grid, dtype=float))
        im = ax.imshow(data, cmap=cmap, aspect="auto", origin="lower")
        finite = [v for row in grid for v in row if not math.isnan(v)]
        span = (max(finite) - min(finite)) if finite else 0
        for r, row in enumerate(grid):
            for col, v in enumerate(row):
                if math.isnan(v):
                    continue
                dark = span > 0 and (v - min(finite)) / span > 0.6
                ax.text(col, r, f"{v:.3g}", ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
        ax.set_xticks(range(len(cdmcs)), [label(json.loads(s)) for s in cdmcs])
        ax.set_yticks(range(len(margins)), [label(json.loads(s)) for s in margins])
        ax.set_xlabel("CUDA_DEVICE_MAX_CONNECTIONS")
        ax.set_ylabel("GEMM SM margin (SMs)")
        fig.colorbar(im, ax=ax, label="exposed comm (ms)")
        what = ", ".join(f"{k}={label(v)}" for k, v in named)
        ax.set_title(f"exposed comm (ms){' - ' + what if what else ''}\n{provenance(doc)}",
                     fontsize=10, color="red" if doc["simulated"] else "black")
        fig.tight_layout()
        name = "heatmap_exposed" + ("_" + slug("_".join(f"{k}={label(v)}" for k, v in named))
                                    if named else "") + ".png"
        path = os.path.join(out_dir, name)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def method_bars(doc, out_dir, plt):
    by_method = {}
    for c in doc["cases"]:
        if "method" in c["params"]:
            by_method.setdefault(label(c["params"]["method"]), []).append(c)
    if not by_method:
        return []
    methods = sorted(by_method)
    best = [min(by_method[m], key=lambda c: c["exposed_comm_ms"]) for m in methods]
    lows = [b["exposed_comm_ms"] for b in best]
    highs = [max(c["exposed_comm_ms"] for c in by_method[m]) for m in methods]

    fig, ax = plt.subplots(figsize=(1.4 * len(methods) + 3, 4.5))
    xs = range(len(methods))
    ax.bar(xs, lows, color="tab:blue", label="best case")
    # The whisker spans every case of the method: how much the other knobs matter.
    ax.errorbar(xs, lows, yerr=[[0] * len(methods), [h - lo for h, lo in zip(highs, lows)]],
                fmt="none", ecolor="black", capsize=4, label="range over cases")
    for x, b, m in zip(xs, best, methods):
        ax.annotate(f"{b['exposed_comm_ms']:.3g}\n(n={len(by_method[m])})", (x, lows[x]),
                    textcoords="offset points", xytext=(6, 2), ha="left", va="bottom",
                    fontsize=8)
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.set_xticks(list(xs), methods)
    ax.set_xlabel("overlap method")
    ax.set_ylabel("exposed comm (ms)")
    ax.set_title(f"exposed comm per method (bar: best case; whisker: all cases)\n{provenance(doc)}",
                 fontsize=10, color="red" if doc["simulated"] else "black")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "bars_exposed_by_method.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", metavar="RESULT.json")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs")
    args = parser.parse_args(argv)  # usage errors exit 2, as the binary's do

    doc = load_result(args.result)
    try:
        import matplotlib
        matplotlib.use("Agg")  # no display on CI and GPU nodes
        import matplotlib.pyplot as plt
    except ImportError:
        fail(3, "matplotlib not found: apt-get install python3-matplotlib and run with "
                "/usr/bin/python3")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        fail(3, f"{args.out}: cannot create folder: {e.strerror}")

    written = heatmaps(doc, args.out, plt) + method_bars(doc, args.out, plt)
    if not written:
        print(f"plot.py: {args.result}: nothing to plot: no case has params cdmc and sm_margin, "
              "or method", file=sys.stderr)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
