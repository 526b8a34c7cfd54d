"""The pictures of `overlap-bench report` for a step document (overlap-bench/step/v1,
docs/ARCHITECTURE.md §7.4, §9.4), drawn by scripts/report_plots.py and scripts/plot.py:
  breakdown.png    each case's step on its critical stage, stacked by the parts of its breakdown
  diagnosis.png    each case's exposed time (the breakdown less compute and optimizer) by cause
  throughput.png   MFU and tokens/s per GPU per case
Every title says SIMULATED when the numbers come from the simulator.
"""
from plot_common import diagnosis_bars, save, short, title, varying_axes

# The breakdown's parts in document order, with their colours: compute blue, optimizer grey,
# what is exposed in the colours of the cause it usually is (results/README.md).
PARTS = [("compute", "#4c72b0"), ("tp_exposed", "#dd8452"), ("cp_exposed", "#c44e52"),
         ("dp_exposed", "#bcbd22"), ("pp_exposed", "#55a868"), ("bubble", "#17becf"),
         ("optimizer", "#8c8c8c"), ("other", "#c7c7c7")]


def labels(doc):
    axes = varying_axes(doc["cases"])
    return [short(c, axes) for c in doc["cases"]]


def breakdown(doc, plt, out_dir, written):
    cases = doc["cases"]
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(cases) + 2.4))
    for y, c in enumerate(cases):
        left = 0.0
        for part, color in PARTS:
            ms = c["breakdown_ms"][part]
            ax.barh(y, ms, left=left, color=color, label=part if y == 0 else None)
            left += ms
        ax.annotate(f"{c['step_ms']['median']:.1f} ms", (left, y), textcoords="offset points",
                    xytext=(4, 0), va="center", fontsize=8)
    ax.set_yticks(range(len(cases)), labels(doc), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time per step on the critical stage (ms)")
    ax.set_xlim(0, max(c["step_ms"]["median"] for c in cases) * 1.15)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    title(ax, "Where the step went, per case: compute, exposed communication, bubble, optimizer",
          doc)
    save(fig, out_dir, "breakdown.png", "breakdown",
         "Each case's step on its critical stage, stacked by the parts of its breakdown (they add "
         "up to the step)", written)
    plt.close(fig)


def throughput(doc, plt, out_dir, written):
    cases = doc["cases"]
    fig, (mfu, tok) = plt.subplots(1, 2, figsize=(12, 0.45 * len(cases) + 2.4), sharey=True)
    ys = range(len(cases))
    mfu.barh(ys, [100 * c["mfu"] for c in cases], color="#4c72b0")
    tok.barh(ys, [c["tokens_per_s_per_gpu"] for c in cases], color="#55a868")
    for y, c in enumerate(cases):
        mfu.annotate(f"{100 * c['mfu']:.1f} %", (100 * c["mfu"], y), textcoords="offset points",
                     xytext=(3, 0), va="center", fontsize=8)
        tok.annotate(f"{c['tokens_per_s_per_gpu']:.0f}", (c["tokens_per_s_per_gpu"], y),
                     textcoords="offset points", xytext=(3, 0), va="center", fontsize=8)
    mfu.set_yticks(list(ys), labels(doc), fontsize=8)
    mfu.invert_yaxis()
    mfu.set_xlabel("MFU (%) against the dense peak")
    tok.set_xlabel("tokens/s per GPU")
    for ax, top in ((mfu, max(100 * c["mfu"] for c in cases)),
                    (tok, max(c["tokens_per_s_per_gpu"] for c in cases))):
        ax.set_xlim(0, top * 1.2 if top > 0 else 1)
    title(fig, "Throughput per case: MFU and tokens/s per GPU", doc)
    save(fig, out_dir, "throughput.png", "throughput",
         "MFU (Megatron's model FLOPs, recomputation not counted, over the dense peak) and "
         "tokens/s per GPU of each case", written)
    plt.close(fig)


def draw(doc, plt, out_dir, written):
    if not doc["cases"]:
        return
    breakdown(doc, plt, out_dir, written)
    diagnosis_bars(doc, plt, out_dir, written, "exposed_ms", varying_axes(doc["cases"]),
                   "the step was not all compute")
    throughput(doc, plt, out_dir, written)
