#!/usr/bin/env python3
"""Prints docs/CALIBRATION.md's tables, so the page cannot drift from the files or the model.

Without --accuracy: §2's tables from configs/gpus/*.json, every constant, its value, what it
controls in the model (docs/ARCHITECTURE.md §5.1) and its source.
With --accuracy: §3.7's accuracy table, per family the mean and worst error of the given points,
from running the simulator (`calibrate --check` on configs/calibration/<folder>, and the step
rows of configs/calibration/published_steps.json).

Usage: scripts/calibration_tables.py > /tmp/tables.md
       scripts/calibration_tables.py --accuracy [--bin build/overlap-bench] > /tmp/accuracy.md"""
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHAT = {
    "compute_capability_major": "Hopper test for `te_launch_ordering=auto` (major 9 with CDMC > 1)",
    "sm_count": "SM slots; GEMM CTAs = min(units, SMs − margin); per-SM GEMM rate = peak / SMs",
    "peak_tflops": "per-SM GEMM math rate (× `gemm_efficiency`); bf16 also for attention-core FLOPs",
    "hbm_gbps": "memory-bound elementwise ops, GEMMs' HBM share and the HBM shared by GEMMs and comm (× `elementwise_hbm_efficiency`)",
    "hbm_gib": "GPU memory a step case's memory estimate must fit in (docs/MEMORY.md; over it: OOM)",
    "nvlink_gbps": "per-GPU NVLink bandwidth all moving NCCL channels share (× `nccl_link_efficiency`)",
    "nic_gbps": "NIC rate of the default cluster (no cluster file)",
    "gemm_tile": "tile of the first GEMM candidate (others: transpose, half width)",
    "launch_us": "host cost of a kernel launch or copy-engine memcpy",
    "nccl_launch_us": "host cost of one NCCL call",
    "event_us": "host cost of each cross-stream dependency",
    "graph_node_us": "host cost per op under `--graphs`",
    "eager_op_us": "host cost of each GEMM, elementwise kernel and host-only framework op a step issues from eager PyTorch",
    "c10d_call_us": "host cost of each DP collective and NCCL EP exchange a step issues through torch.distributed",
    "host_sync_us": "a host sync's device-to-host copy until the host runs again",
    "cross_queue_event_us": "delay before a dependency resolved in another hardware queue is seen",
    "max_pending_launches": "launches the host can have outstanding before it blocks",
    "nccl_step_us": "latency of a collective's first ring step, by protocol (NCCL base + one hop)",
    "sim.gemm_efficiency": "mainloop fraction of per-SM peak a GEMM tile reaches, by dtype",
    "sim.small_tile_efficiency": "per-SM rate of the 128×128 tile relative to the main tile",
    "sim.gemm_setup_us": "once per GEMM CTA: prologue, pipeline fill, last epilogue",
    "sim.gemm_unit_overhead_us": "per GEMM work unit (tile or K slice)",
    "sim.gemm_splitk_fixup_us": "per K slice of a split-K/stream-K kernel",
    "sim.gemm_splitk_min_k": "shortest K slice a split-K candidate may use",
    "sim.gemm_splitk_max": "most K slices per tile",
    "sim.gemm_mem_overlap_loss": "share of min(math, HBM time) a unit does not hide",
    "sim.hbm_interference": "HBM shared by GEMMs and comm: traffic per byte, sensitivity to the other side's share",
    "sim.nccl_channel_gbps": "most one NCCL channel (one CTA) moves",
    "sim.nccl_link_efficiency": "fraction of `nvlink_gbps` NCCL's channels use together",
    "sim.nccl_default_ctas": "channels when the op asks for the library default (ctas 0), before NCCL's small-message rule",
    "sim.nccl_hop_us": "latency of each further ring step, by protocol",
    "sim.nccl_protocol_bw": "rate of a protocol relative to Simple (channel and link)",
    "sim.nccl_thread_bytes": "NCCL's per-thread threshold: channels drop while size < channels × threads × this (× ranks for the LL ring only)",
    "sim.nccl_threads": "threads per NCCL CTA in that rule",
    "sim.nccl_fill_fraction": "chunk pipeline: a channel runs 1/(1 + this) slower over its first `nccl_fill_bytes`",
    "sim.nccl_fill_bytes": "bytes per channel over which the pipeline fills",
    "sim.nvls": "NVLS all-reduce: fixed latency and busbw relative to the ring (absent: no NVLS)",
    "sim.nccl_symmetric_latency_factor": "NVLink latency of NCCL's symmetric-memory kernels relative to the usual ones (absent: `symmetric on` refused)",
    "sim.copy_engine_gbps": "copy-engine send/recv rate, shared by concurrent copies",
    "sim.elementwise_hbm_efficiency": "fraction of `hbm_gbps` memory-bound kernels reach",
    "sim.sustained_clock_factor": "tensor-core rate of a training step (busy for seconds) relative to the short loops the GEMM constants are fitted to",
    "sim.flash_attention_efficiency": "fraction of the bf16 peak a fused flash-attention kernel's counted FLOPs reach (forward, backward)",
    "sim.flash_attention_efficiency.flash2": "the same for FlashAttention-2 (attention backend `flash2`; absent: the backend refused)",
    "sim.flash_attention_efficiency.fp8": "the same for cuDNN's fused attention on per-tensor scaled fp8 inputs (`--fp8-dot-product-attention` with dtype fp8; absent: refused)",
    "sim.flash_attention_efficiency.mxfp8": "the same for cuDNN's fused attention on MXFP8 inputs (`--fp8-dot-product-attention` with dtype mxfp8; absent: refused)",
    "sim.flash_attention_efficiency.dropout": "share of that rate a fused attention kernel keeps while it applies attention dropout (forward and backward)",
}
# The EP dispatchers' protocol constants (docs/MOE.md §7.1, sim/ep_dispatch.cpp), one block per
# dispatcher: deepep (normal kernels), deepep_low_latency, hybridep.
EP_DISPATCH = {
    "default_sms": "SMs the dispatcher's kernels hold when the op names none",
    "sm_gbps": "GB/s one held SM moves (the SMs' work: bytes / this, over the SMs)",
    "token_sm_us": "SM time per token copy of a dispatch (with the bytes, over the SMs)",
    "combine_token_sm_us": "SM time per token copy of a combine",
    "dispatch_us": "fixed cost of a dispatch call (layout, notify, the host's view of the counts)",
    "combine_us": "fixed cost of a combine call",
}
for _dispatcher in ("deepep", "deepep_low_latency", "hybridep"):
    for _field, _text in EP_DISPATCH.items():
        WHAT[f"sim.ep_dispatch.{_dispatcher}.{_field}"] = f"{_dispatcher}: {_text}"


def what(path):
    for key in sorted(WHAT, key=len, reverse=True):
        if path == key or path.startswith(key + "."):
            return WHAT[key]
    return ""


def leaves(obj, prefix=""):
    for k, v in obj.items():
        p = prefix + k
        if isinstance(v, dict) and "value" in v and "source" in v:
            yield p, v
        elif isinstance(v, dict):
            yield from leaves(v, p + ".")


def table(name):
    with open(os.path.join(ROOT, "configs", "gpus", name + ".json")) as f:
        doc = json.load(f)
    out = [f"### `configs/gpus/{name}.json` — {doc['display_name']}", "",
           "| constant | value | what it controls | source | assumption? |", "|---|---|---|---|---|"]
    for p, v in leaves(doc):
        src = v["source"].replace("|", "/")
        a = "yes" if src.startswith("assumption") else "no"
        out.append(f"| `{p}` | {v['value']} | {what(p)} | {src} | {a} |")
    return "\n".join(out) + "\n"


# The collective and GEMM families: (family, [(gpu file, folder of configs/calibration)], which
# rows of each folder's check belong to it).
CHECK_FAMILIES = [
    ("GEMM, H100", [("h100_sxm", "h100_sxm")], "TFLOP/s"),
    ("collective, one node (H100 NVLS sweep and all-to-all, H200)",
     [("h100_sxm", "h100_sxm"), ("h200", "h200")], "busbw"),
    ("collective, across nodes (4 × 8 H100, NDR)", [("h100_sxm", "multinode")], "busbw"),
    ("collective, NVLink 5 (B300, B200, GB200, GB300)",
     [("b300", "b300"), ("b200", "b200"), ("gb200", "gb200"), ("gb300", "gb300")], "busbw"),
]
ROW = re.compile(r"^(?P<what>.+?)\s+(?P<meas>[\d.]+)\s+(?P<model>[\d.]+)\s+(?P<err>[+-][\d.]+)%\s+"
                 r"(?P<unit>TFLOP/s|GB/s busbw)")


def run(binary, args):
    p = subprocess.run([binary] + args, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)}: exit {p.returncode}\n{p.stderr}")
    return p.stdout


def check_points(binary, gpu, folder, unit):
    out = run(binary, ["calibrate", "--check", "--gpu", gpu,
                       os.path.join("configs", "calibration", folder)])
    for line in out.splitlines():
        m = ROW.match(line)
        if m and unit in m["unit"]:
            yield f"{m['what'].strip()} ({gpu})", float(m["err"])


def step_cases(doc):
    """Every step case of a result document, wherever the document keeps them."""
    if isinstance(doc, dict):
        if "config" in doc and "step_ms" in doc:
            yield doc
        for v in doc.values():
            yield from step_cases(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from step_cases(v)


def causal_tflops_per_gpu(doc, case):
    """The case's model TFLOP/s per GPU with the attention core counted causal: Megatron's count
    (`model_tflops_per_gpu`: QK^T and AV over the whole sequence, x 3 for the backward) less the
    half a causal mask skips, 6 · batch · seq² · layers · heads · head_dim FLOPs per step. The
    Llama 3 paper's Table 4 rows compare on it (docs/CALIBRATION.md §3.7)."""
    with open(os.path.join(ROOT, "configs", "models", doc["config"]["model"] + ".json")) as f:
        model = json.load(f)
    c = case["config"]
    heads = model["num_attention_heads"]
    head_dim = model.get("kv_channels", model["hidden_size"] // heads)
    skipped = 6.0 * c["gbs"] * c["seq"] ** 2 * c["layers"] * heads * head_dim
    seconds = case["step_ms"]["median"] / 1000.0
    return case["model_tflops_per_gpu"] - skipped / seconds / c["gpus"] / 1e12


def step_figure(doc, case, row):
    """The model's figure for a published_steps.json row, in the row's unit."""
    if row["unit"] == "ms":
        return case["step_ms"]["median"]
    if row["unit"] == "tokens/s/GPU":
        return case["tokens_per_s_per_gpu"]
    if row["unit"] == "TFLOP/s/GPU" and row.get("flop_count") == "causal":
        return causal_tflops_per_gpu(doc, case)
    if row["unit"] == "TFLOP/s/GPU" and row.get("flop_count") == "megatron":
        return case["model_tflops_per_gpu"]
    sys.exit(f"{row['point']}: unit {row['unit']!r} with flop_count {row.get('flop_count')!r}")


def step_point(binary, row):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "step.json")
        run(binary, row["args"] + ["--backend", "sim", "--json", out])
        with open(out) as f:
            doc = json.load(f)
    for case in step_cases(doc):
        if all(case["config"].get(k) == v for k, v in row["match"].items()):
            return 100 * (step_figure(doc, case, row) / row["published"] - 1)
    sys.exit(f"{row['point']}: no case matches {row['match']}")


def accuracy(binary):
    families = {}
    for family, inputs, unit in CHECK_FAMILIES:
        cmd = "; ".join(f"`calibrate --check --gpu {g} configs/calibration/{f}`" for g, f in inputs)
        pts = [p for g, f in inputs for p in check_points(binary, g, f, unit)]
        families[family] = (pts, cmd)
    # A row marked "held": false is reported on its own line, outside every held family and the
    # total (tests/e2e/test_calibrate.py holds the others within 10 % and these outside it).
    unheld = []
    with open(os.path.join(ROOT, "configs", "calibration", "published_steps.json")) as f:
        for row in json.load(f)["rows"]:
            point = (f"{row['point']}, {row['unit']}", step_point(binary, row))
            if not row.get("held", True):
                unheld.append(point)
                continue
            pts, _ = families.setdefault(row["family"], ([], STEP_CMD))
            pts.append(point)
    out = ["| family | points | mean | worst (point) | command |", "|---|---|---|---|---|"]
    for family, (pts, cmd) in families.items():
        out.append(family_line(family, pts, cmd))
    every = [p for pts, _ in families.values() for p in pts]
    out.append(family_line("every given point", every,
                           "`scripts/calibration_tables.py --accuracy`"))
    if unheld:
        out.append(family_line(UNHELD, unheld, STEP_CMD))
    return "\n".join(out) + "\n"


STEP_CMD = "the rows of `configs/calibration/published_steps.json`"
UNHELD = "training steps (reported, not held)"


def family_line(family, pts, cmd):
    mean = sum(abs(e) for _, e in pts) / len(pts)
    what, worst = max(pts, key=lambda p: abs(p[1]))
    return f"| {family} | {len(pts)} | {mean:.1f} % | {worst:+.1f} % ({what}) | {cmd} |"


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--accuracy":
        binary = args[2] if len(args) > 2 and args[1] == "--bin" else "build/overlap-bench"
        print(accuracy(os.path.abspath(os.path.join(ROOT, binary))), end="")
    else:
        names = args or ["h100_sxm", "h200", "b200", "a100_sxm", "b300", "gb200", "gb300"]
        print("\n".join(table(n) for n in names))
