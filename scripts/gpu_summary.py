#!/usr/bin/env python3
"""Summarises one scripts/device_validate.sh run: reads the JSON and logs in a results folder
and writes summary.md (and summary.json) beside them.

Files read (each optional; a missing one shows as "not run" or is left out):
  steps.tsv               one line per step: name, status, exit code, seconds, log, note
  env.json                GPU, driver, toolchain facts device_validate.sh collected
  bench.json              bench_cuda --benchmark_format=json output
  torch.json              scripts/validate_torch.py output
  <scenario>_loopback.json / <scenario>_sim.json
                          overlap-bench result documents (schema overlap-bench/result/v1) of the
                          same cases measured on the loopback backend and predicted by the sim
  <scenario>_graphs_loopback.json   the same cases with --graphs (no sim twin needed)
  coll_*.json             overlap-bench coll documents (schema overlap-bench/coll/v1)
  sanitizer.log           compute-sanitizer output ("ERROR SUMMARY: N errors")

Standard library only: it runs (and is tested) on machines without a GPU.
"""
import argparse
import glob
import json
import math
import os
import re
import sys
import tempfile

# --- reading ------------------------------------------------------------------------------------


def load_json(path):
    """The parsed file, or None when it is missing or not valid JSON (noted in `problems`)."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        PROBLEMS.append(f"{os.path.basename(path)}: unreadable ({e})")
        return None


PROBLEMS = []


def read_steps(path):
    steps = []
    if not os.path.exists(path):
        return steps
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            parts += [""] * (6 - len(parts))
            name, status, rc, seconds, log, note = parts[:6]
            steps.append(
                {
                    "name": name,
                    "status": status,
                    "rc": int(rc) if re.fullmatch(r"-?\d+", rc) else None,
                    "seconds": float(seconds) if re.fullmatch(r"[\d.]+", seconds) else None,
                    "log": log,
                    "note": note,
                }
            )
    return steps


def bench_name(raw):
    """Google Benchmark appends /min_time:..., /manual_time, /real_time: drop them."""
    keep = [p for p in raw.split("/") if not re.match(r"(min_time:|manual_time$|real_time$|iterations:)", p)]
    return "/".join(keep)


def bench_rows(doc):
    rows = {}
    for b in (doc or {}).get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue
        name = bench_name(b.get("name", ""))
        rows[name] = b
    return rows


def median(stat):
    if isinstance(stat, dict):
        v = stat.get("median")
        return v if isinstance(v, (int, float)) else None
    return None


def pct_error(predicted, measured):
    if predicted is None or measured is None or measured == 0:
        return None
    return (predicted - measured) / measured * 100.0


def canonical_params(params):
    return json.dumps({k: v for k, v in (params or {}).items() if k != "backend"}, sort_keys=True)


def pair_cases(measured_doc, sim_doc):
    """Each measured case with its sim twin (same id, else same params), in measured order."""
    sims = (sim_doc or {}).get("cases", [])
    by_id = {c.get("id"): c for c in sims}
    by_params = {canonical_params(c.get("params")): c for c in sims}
    out = []
    for c in (measured_doc or {}).get("cases", []):
        twin = by_id.get(c.get("id")) or by_params.get(canonical_params(c.get("params")))
        out.append((c, twin))
    return out


# --- formatting ---------------------------------------------------------------------------------


def fmt(v, digits=3):
    if v is None:
        return "—"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return "—"
        return f"{v:.{digits}f}"
    return str(v)


def fmt_pct(v):
    return "—" if v is None else f"{v:+.1f}%"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |")
    return lines


def params_text(params):
    return ", ".join(f"{k}={v}" for k, v in (params or {}).items())


# --- sections -----------------------------------------------------------------------------------


def section_steps(steps):
    if not steps:
        return ["## Steps", "", "No steps.tsv: nothing was recorded.", ""]
    rows = []
    for s in steps:
        rows.append([s["name"], s["status"], fmt(s["rc"]), fmt(s["seconds"], 1), s["log"], s["note"]])
    return ["## Steps", ""] + table(["step", "status", "exit", "seconds", "log", "note"], rows) + [""]


def section_gemm(bench, torch_doc, summary):
    torch_by_name = {g["name"]: g for g in (torch_doc or {}).get("gemm", [])}
    rows = []
    for name, b in bench.items():
        if not name.startswith("gemm/"):
            continue
        parts = name.split("/")
        shape = parts[1] if len(parts) > 1 else name
        variant = "/".join(parts[2:])
        ours = b.get("TFLOPS")
        ref = torch_by_name.get(shape, {}).get("tflops") if variant == "bf16" else None
        ratio = ours / ref if ours and ref else None
        err = b.get("error_message", "") if b.get("error_occurred") else ""
        rows.append([shape, variant, fmt(ours, 1), fmt(ref, 1), fmt(ratio, 3), err])
        summary["gemm"].append(
            {"shape": shape, "variant": variant, "tflops": ours, "torch_tflops": ref, "ratio": ratio}
        )
    if not rows:
        return ["## GEMM (cuBLASLt vs torch.matmul)", "", "Not run.", ""]
    return (
        ["## GEMM (cuBLASLt vs torch.matmul)", "", "Same GPU, same run; ratio = ours / torch.", ""]
        + table(["shape", "dtype / SMs", "ours TFLOP/s", "torch TFLOP/s", "ratio", "error"], rows)
        + [""]
    )


def section_copy(bench, torch_doc, summary):
    memcpy = next((b for n, b in bench.items() if n.startswith("memcpy_d2d")), None)
    ceiling = memcpy.get("GBps") if memcpy else None
    torch_copy = (torch_doc or {}).get("copy", {}).get("GBps")
    rows = []
    for name, b in bench.items():
        if not name.startswith("copy_proxy/"):
            continue
        gbps = b.get("GBps")
        rows.append(
            [name, fmt(b.get("ctas"), 0) if b.get("ctas") is not None else "—", fmt(gbps, 1),
             fmt(b.get("hbm_GBps"), 1), fmt(gbps / ceiling if gbps and ceiling else None, 3)]
        )
        summary["copy"].append({"name": name, "ctas": b.get("ctas"), "GBps": gbps,
                                "vs_memcpy": gbps / ceiling if gbps and ceiling else None})
    if memcpy:
        rows.append(["cudaMemcpy D2D", "copy engine", fmt(ceiling, 1), fmt(memcpy.get("hbm_GBps"), 1), "1.000"])
    if torch_copy:
        rows.append(["torch copy_", "—", fmt(torch_copy, 1),
                     fmt((torch_doc or {}).get("copy", {}).get("hbm_GBps"), 1),
                     fmt(torch_copy / ceiling if ceiling else None, 3)])
    summary["memcpy_GBps"] = ceiling
    summary["torch_copy_GBps"] = torch_copy
    if not rows:
        return ["## Copy proxy vs cudaMemcpy", "", "Not run.", ""]
    return (
        ["## Copy proxy vs cudaMemcpy", "",
         "GB/s = bytes copied per second; HBM GB/s counts read + write.", ""]
        + table(["kernel", "CTAs", "GB/s", "HBM GB/s", "vs memcpy"], rows)
        + [""]
    )


def section_sm_margin(bench, summary):
    """cuBLASLt's SM-count target is a hint: the grid CUPTI saw says whether a margin was real."""
    rows = []
    for name, b in bench.items():
        if not name.startswith("gemm/") or b.get("grid_ctas") is None:
            continue
        target = int(b.get("sm_target") or 0)
        sms = int(b.get("sm_count") or 0)
        grid = int(b.get("grid_ctas") or 0)
        respected = bool(b.get("target_respected"))
        verdict = ("no target" if target == 0 else
                   "respected: the margin stays free" if respected else
                   "NOT a cap: the kernel's grid is wider than the target")
        rows.append([name, fmt(sms, 0), fmt(target, 0) if target else "all", fmt(grid, 0), verdict,
                     (b.get("label") or "").split(";")[0][:60]])
        summary["sm_margin"].append({"name": name, "sm_count": sms, "sm_target": target, "grid_ctas": grid,
                                     "respected": respected if target else None})
    unavailable = [n for n, b in bench.items() if n.startswith("gemm/") and "grid probe unavailable" in (b.get("label") or "")]
    if not rows and not unavailable:
        return []
    lines = ["## SM margin: the kernel cuBLASLt chose (CUPTI)", "",
             "An SM margin is real only when the chosen kernel's grid fits the SM-count target.", ""]
    if rows:
        lines += table(["benchmark", "SMs", "target", "grid CTAs", "verdict", "kernel"], rows) + [""]
        ignored = [r for r in summary["sm_margin"] if r["respected"] is False]
        if ignored:
            lines += [f"**{len(ignored)} GEMM(s) ignored their SM target**: the measured SM-margin effect "
                      "of those shapes is the hardware scheduler's, not a reserved margin.", ""]
    if unavailable:
        lines += [f"Grid probe unavailable for {len(unavailable)} benchmark(s): "
                  + (bench[unavailable[0]].get("label") or ""), ""]
    return lines


def section_clocks(results_dir, summary):
    """Clock warnings the measured documents carry (NVML samples taken on the stream)."""
    notes = []
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        doc = load_json(path)
        if not isinstance(doc, dict) or doc.get("simulated"):
            continue
        texts = [w for c in doc.get("cases", []) or [] for w in (c.get("warnings") or [])]
        for w in texts:
            if "SM clock" in str(w):
                notes.append(f"{os.path.basename(path)}: {w}")
    summary["clock_warnings"] = len(notes)
    if not notes:
        return []
    return ["## Clock warnings", ""] + [f"- {n}" for n in notes[:20]] + [""]


def section_other_bench(bench):
    rows = []
    for name, b in bench.items():
        if name.startswith(("layernorm/", "pair/")):
            t = b.get("real_time")
            rows.append([name, fmt(t, 3) + " " + b.get("time_unit", ""), fmt(b.get("GBps"), 1),
                         fmt(b.get("ctas"), 0) if b.get("ctas") is not None else "—"])
    if not rows:
        return []
    return ["## Other microbenchmarks", ""] + table(["benchmark", "time", "GB/s", "CTAs"], rows) + [""]


def section_vs_sim(title, measured_doc, sim_doc, summary_key, summary):
    if measured_doc is None:
        n = len((sim_doc or {}).get("cases", []))
        return [f"## {title}", "", f"No measurement (the sim predicted {n} case(s); nothing to compare).", ""]
    label = (measured_doc.get("env") or {}).get("label", "")
    rows, errors, exp_errors = [], [], []
    for case, twin in pair_cases(measured_doc, sim_doc):
        meas = median(case.get("overlapped_ms"))
        sim = median(twin.get("overlapped_ms")) if twin else None
        err = pct_error(sim, meas)
        exp_meas = case.get("exposed_comm_ms")
        exp_sim = twin.get("exposed_comm_ms") if twin else None
        if err is not None:
            errors.append(abs(err))
        if isinstance(exp_meas, (int, float)) and isinstance(exp_sim, (int, float)):
            exp_errors.append(abs(exp_sim - exp_meas))
        wrong = case.get("wrong", 0)
        rows.append([case.get("id", ""), params_text(case.get("params")), fmt(meas), fmt(sim), fmt_pct(err),
                     fmt(exp_meas), fmt(exp_sim), fmt(case.get("overlap_efficiency")),
                     ("**" + str(wrong) + "**") if wrong else "0"])
        summary[summary_key].append({"id": case.get("id"), "measured_ms": meas, "sim_ms": sim,
                                     "error_pct": err, "wrong": wrong})
    lines = [f"## {title}", ""]
    if label:
        lines += [f"Measured: {label}. Sim: `--backend sim` of the same cases (a model, not a measurement).", ""]
    if sim_doc is None:
        lines += ["No sim twin file: the sim column is empty.", ""]
    lines += table(["case", "params", "measured overlapped ms", "sim ms", "sim error",
                    "exposed ms (meas)", "exposed ms (sim)", "overlap eff. (meas)", "#wrong"], rows)
    if errors:
        lines += ["", f"Sim error over {len(errors)} cases: mean |error| {sum(errors) / len(errors):.1f}%, "
                      f"max {max(errors):.1f}%."]
        summary[summary_key + "_mean_abs_error_pct"] = sum(errors) / len(errors)
    return lines + [""]


def section_coll(results_dir, summary):
    lines = []
    for path in sorted(glob.glob(os.path.join(results_dir, "coll_*.json"))):
        doc = load_json(path)
        if doc is None:
            continue
        name = os.path.basename(path)[:-5]
        label = (doc.get("env") or {}).get("label", "")
        rows = []
        wrong_total = 0
        for r in doc.get("rows", []):
            wrong_total += r.get("wrong", 0) or 0
            rows.append([r.get("op", ""), r.get("ranks", ""), r.get("size", ""), fmt(r.get("time_us"), 1),
                         fmt(r.get("algbw_gbps"), 2), fmt(r.get("busbw_gbps"), 2),
                         ("**" + str(r.get("wrong")) + "**") if r.get("wrong") else "0"])
        summary["coll"].append({"name": name, "rows": len(rows), "wrong": wrong_total})
        lines += [f"## {name}", ""] + ([f"{label}", ""] if label else [])
        lines += table(["op", "ranks", "size", "time us", "algbw GB/s", "busbw GB/s", "#wrong"], rows) + [""]
    return lines


STEP_PARTS = ("compute", "tp_exposed", "cp_exposed", "dp_exposed", "pp_exposed", "bubble", "optimizer", "other")


def section_step(results_dir, summary):
    """The scaled-down training step on the GPU beside the simulator's (step/v1 documents)."""
    measured = load_json(os.path.join(results_dir, "step_cuda.json"))
    sim = load_json(os.path.join(results_dir, "step_sim.json"))
    if measured is None and sim is None:
        return []
    rows = []
    for name, doc in (("cuda", measured), ("sim", sim)):
        for c in (doc or {}).get("cases", []):
            parts = c.get("breakdown_ms") or {}
            rows.append([name, c.get("id", ""), fmt(median(c.get("step_ms"))), fmt(c.get("mfu"), 3)]
                        + [fmt(parts.get(k)) for k in STEP_PARTS])
    m = median(((measured or {}).get("cases") or [{}])[0].get("step_ms"))
    p = median(((sim or {}).get("cases") or [{}])[0].get("step_ms"))
    summary["step"] = {"cuda_ms": m, "sim_ms": p, "sim_error_pct": pct_error(p, m)}
    lines = ["## step: one GPU (pp 1, tp 1, scaled down) vs sim prediction", ""]
    lines += table(["backend", "case", "step ms", "MFU"] + [k + " ms" for k in STEP_PARTS], rows)
    return lines + ["", f"Sim error on the step time: {fmt_pct(pct_error(p, m))}.", ""]


def section_sanitizer(results_dir, summary):
    path = os.path.join(results_dir, "sanitizer.log")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    m = re.findall(r"ERROR SUMMARY:\s*(\d+)\s+error", text)
    errors = int(m[-1]) if m else None
    summary["sanitizer_errors"] = errors
    verdict = "no summary line found (did it run?)" if errors is None else f"{errors} error(s)"
    return ["## compute-sanitizer memcheck", "", f"Result: {verdict} (sanitizer.log).", ""]


def build_summary(results_dir):
    del PROBLEMS[:]
    summary = {"gemm": [], "copy": [], "pair": [], "layer": [], "coll": [], "sm_margin": [], "problems": PROBLEMS}
    env = load_json(os.path.join(results_dir, "env.json")) or {}
    steps = read_steps(os.path.join(results_dir, "steps.tsv"))
    bench = bench_rows(load_json(os.path.join(results_dir, "bench.json")))
    torch_doc = load_json(os.path.join(results_dir, "torch.json"))

    lines = ["# GPU validation: " + str(env.get("gpu", "unknown GPU")), ""]
    facts = [(k, env.get(k)) for k in ("date", "gpu", "driver", "cuda", "nvcc", "torch", "nccl", "git_sha", "host")]
    facts = [(k, v) for k, v in facts if v]
    if facts:
        lines += table(["fact", "value"], facts) + [""]
    failed = [s for s in steps if s["status"] not in ("ok", "skipped", "expected-failure", "fixture")]
    fixtures = [s["name"] for s in steps if s["status"] == "fixture"]
    summary["failed_steps"] = [s["name"] for s in failed]
    lines += section_steps(steps)
    lines += section_gemm(bench, torch_doc, summary)
    lines += section_copy(bench, torch_doc, summary)
    lines += section_sm_margin(bench, summary)
    lines += section_other_bench(bench)
    for scenario in ("pair", "layer"):
        measured = load_json(os.path.join(results_dir, f"{scenario}_loopback.json"))
        sim = load_json(os.path.join(results_dir, f"{scenario}_sim.json"))
        if measured is not None or sim is not None:
            lines += section_vs_sim(f"{scenario}: loopback measurement vs sim prediction", measured, sim,
                                    scenario, summary)
    graphs = load_json(os.path.join(results_dir, "pair_graphs_loopback.json"))
    if graphs is not None:
        summary.setdefault("pair_graphs", [])
        lines += section_vs_sim("pair with --graphs: loopback vs sim", graphs,
                                load_json(os.path.join(results_dir, "pair_sim.json")), "pair_graphs", summary)
    lines += section_coll(results_dir, summary)
    lines += section_step(results_dir, summary)
    lines += section_sanitizer(results_dir, summary)
    lines += section_clocks(results_dir, summary)
    wrong = sum(x.get("wrong", 0) or 0 for k in ("pair", "layer") for x in summary[k])
    wrong += sum(x.get("wrong", 0) or 0 for x in summary["coll"])
    summary["wrong_total"] = wrong
    verdict = "PASS" if not failed and wrong == 0 and not summary.get("sanitizer_errors") else "ATTENTION"
    if fixtures:
        # A dry run's GPU outputs are fixtures: nothing here was measured.
        verdict = "DRY RUN (fixtures, not measurements)" if not failed else "DRY RUN: ATTENTION"
    summary["fixture_steps"] = fixtures
    summary["verdict"] = verdict
    lines[1:1] = ["", f"Verdict: **{verdict}**" + (f" (failed steps: {', '.join(summary['failed_steps'])})" if failed else "")
                  + (f" ({wrong} wrong elements)" if wrong else "")]
    if PROBLEMS:
        lines += ["## Problems reading results", ""] + [f"- {p}" for p in PROBLEMS] + [""]
    return "\n".join(lines).rstrip() + "\n", summary


def write_atomic(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Summarise a device_validate.sh results folder.")
    ap.add_argument("--dir", required=True, help="results folder (results/gpu/<date>-<gpu>)")
    ap.add_argument("--out", help="summary markdown (default: DIR/summary.md)")
    ap.add_argument("--print", action="store_true", help="also print the markdown")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.dir):
        print(f"gpu_summary: {args.dir}: not a folder", file=sys.stderr)
        return 2
    text, summary = build_summary(args.dir)
    out = args.out or os.path.join(args.dir, "summary.md")
    write_atomic(out, text)
    write_atomic(os.path.splitext(out)[0] + ".json", json.dumps(summary, indent=2) + "\n")
    if args.print:
        print(text)
    print(f"gpu_summary: wrote {out} (verdict {summary['verdict']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
