"""What the pictures of overlap-bench share (scripts/report_plots.py for result documents,
scripts/step_plots.py for step documents, scripts/plot.py without a report): reading a document,
matplotlib without a display, titles that say SIMULATED, one colour per cause, saving, and the
per-case diagnosis bars.
"""
import json
import os
import sys
import textwrap

RESULT_SCHEMA = "overlap-bench/result/v1"
STEP_SCHEMA = "overlap-bench/step/v1"
# One colour per cause, the same in every picture.
CAUSE_COLORS = {
    "queue_blocked": "#8c564b", "sm_starved": "#d62728", "contention_slowdown": "#ff7f0e",
    "chunking_cost": "#9467bd", "tail_not_overlapped": "#1f77b4", "bubble": "#17becf",
    "late_bucket": "#bcbd22", "serialized_same_stream": "#7f7f7f", "launch_overhead": "#e377c2",
    "other": "#c7c7c7",
}
CHARS_PER_INCH = 10  # of an 11 pt title line: titles are wrapped to fit their figure


def fail(code, message):
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)
    sys.exit(code)


def read_json(path):
    """A JSON file's value; exit 2 naming the file when it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(2, f"{path}: cannot read: {e}")


def load(path):
    """A result or step document with its cases; exit 2 naming the file otherwise."""
    doc = read_json(path)
    if (not isinstance(doc, dict) or doc.get("schema") not in (RESULT_SCHEMA, STEP_SCHEMA)
            or not isinstance(doc.get("cases"), list)):
        fail(2, f"{path}: not an overlap-bench result or step v1 document")
    return doc


def is_step(doc):
    return doc.get("schema") == STEP_SCHEMA


def import_pyplot():
    """(plt, np) with the Agg backend (no display on CI and GPU nodes); exit 3 without
    matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        fail(3, "matplotlib not found: apt-get install python3-matplotlib and run /usr/bin/python3")
    return plt, np


def provenance(doc):
    env = doc.get("env") or {}
    gpu = env.get("gpu")
    gpu = gpu.get("name", "") if isinstance(gpu, dict) else (gpu or "")
    if doc.get("simulated"):
        text = "SIMULATED - model output, not a measurement"
    elif env.get("backend") == "loopback":
        text = "loopback (no NVLink)"
    else:
        text = f"measured ({env.get('backend', '?')})"
    return f"{text}, {gpu}" if gpu else text


def title(ax_or_fig, text, doc_or_flag, size=11):
    """Title wrapped to the figure's width, then the provenance line; red when simulated. The
    figure is saved with a tight bounding box, so nothing is cut off."""
    simulated = doc_or_flag if isinstance(doc_or_flag, bool) else bool(doc_or_flag.get("simulated"))
    prov = provenance(doc_or_flag) if isinstance(doc_or_flag, dict) else (
        "SIMULATED results included" if simulated else "measured")
    fig = ax_or_fig if hasattr(ax_or_fig, "suptitle") else ax_or_fig.figure
    width = max(40, int(fig.get_figwidth() * CHARS_PER_INCH))
    lines = textwrap.wrap(text, width) + [prov]
    kw = dict(fontsize=size, color="#b00000" if simulated else "black")
    if hasattr(ax_or_fig, "suptitle"):
        ax_or_fig.suptitle("\n".join(lines), **kw)
    else:
        ax_or_fig.set_title("\n".join(lines), **kw)


def text(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return v if isinstance(v, str) else json.dumps(v)


def varying_axes(cases, axes=None):
    """The params (of `axes`, or any) that take two or more values across the cases."""
    keys = axes if axes is not None else list(dict.fromkeys(k for c in cases for k in c["params"]))
    out = []
    for k in keys:
        values = {json.dumps(c["params"].get(k)) for c in cases if k in c["params"]}
        if len(values) > 1:
            out.append(k)
    return out


def short(case, axes):
    return " ".join(f"{k}={text(case['params'][k])}" for k in axes if k in case["params"]) or case["id"]


def save(fig, out_dir, name, kind, caption, written):
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    written.append((kind, name, caption))


def diagnosis_bars(doc, plt, out_dir, written, exposed_key, axes, what):
    """Each diagnosed case's exposed time (`exposed_key`) as one bar split into its causes; the
    40 most exposed when there are more. `what` is the picture's subject ("communication was
    exposed")."""
    cases = [c for c in doc["cases"] if c.get("diagnosis")]
    if not cases:
        return
    caption = f"Why {what}: each case's exposed time split into its causes (docs/ARCHITECTURE.md §7.1)"
    if len(cases) > 40:
        cases = sorted(cases, key=lambda c: -c[exposed_key])[:40]
        caption += "; the 40 most exposed cases"
    fig, ax = plt.subplots(figsize=(11, 0.3 * len(cases) + 2.2))
    seen = set()
    for y, c in enumerate(cases):
        left = 0.0
        for part in c["diagnosis"]["causes"]:
            cause = part["cause"]
            color = CAUSE_COLORS.get(cause, "#333333")
            # The SM margin's share of contention, hatched: the GEMMs gave those SMs up.
            margin = min(part.get("sm_margin_ms", 0.0), part["ms"])
            if margin > 0:
                ax.barh(y, margin, left=left, color=color, hatch="//", edgecolor="white",
                        label="contention_slowdown: SM margin" if "margin" not in seen else None)
                seen.add("margin")
            ax.barh(y, part["ms"] - margin, left=left + margin, color=color,
                    label=cause if cause not in seen else None)
            seen.add(cause)
            left += part["ms"]
    ax.set_yticks(range(len(cases)), [short(c, axes) for c in cases], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("exposed time (ms)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    title(ax, f"Why {what}, per case", doc)
    save(fig, out_dir, "diagnosis.png", "diagnosis", caption, written)
    plt.close(fig)
