#!/usr/bin/env python3
"""The host-side parts of scripts/device_validate.sh, without a GPU: gpu_summary.py fed with
synthetic result files, and the shell script's argument parsing through --dry-run.

Standard library only. Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.environ.get("OB_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUMMARY = os.path.join(ROOT, "scripts", "gpu_summary.py")
VALIDATE = os.path.join(ROOT, "scripts", "device_validate.sh")
PY = sys.executable or "python3"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from script_checks import Checks  # noqa: E402

CHECKS = Checks()
check = CHECKS.check


def stats(median):
    return {"median": median, "p10": median * 0.98, "p90": median * 1.02, "min": median * 0.97,
            "max": median * 1.05, "mean": median, "stdev": median * 0.01, "cv": 0.01, "n": 20}


def case(cid, params, overlapped, exposed, wrong=0):
    return {"id": cid, "scenario": "pair", "params": params, "compute_ms": stats(overlapped * 0.8),
            "compute_with_margin_ms": stats(overlapped * 0.85), "comm_ms": stats(0.3),
            "serial_ms": stats(overlapped * 1.2), "overlapped_ms": stats(overlapped),
            "exposed_comm_ms": exposed, "overlap_efficiency": 0.5, "speedup_vs_serial": 1.2,
            "ideal_ms": overlapped * 0.8, "headroom_ms": 0.1, "gemm_slowdown": 1.1, "comm_slowdown": 1.2,
            "timeline_overlap_pct": 80.0, "gemm_tflops": 700.0, "gemm_tflops_overlapped": 650.0,
            "comm_busbw_gbps": None, "comm_busbw_gbps_overlapped": None, "wrong": wrong, "warnings": []}


def result_doc(backend, cases):
    return {"schema": "overlap-bench/result/v1", "simulated": backend == "sim", "tool": {},
            "env": {"backend": backend, "simulated": backend == "sim",
                    "label": "loopback (no NVLink)" if backend == "loopback" else "sim (model, not a measurement)"},
            "config": {}, "cases": cases}


def write(folder, name, obj):
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        if isinstance(obj, str):
            f.write(obj)
        else:
            json.dump(obj, f)


def run_summary(folder, *extra):
    return subprocess.run([PY, SUMMARY, "--dir", folder, *extra], capture_output=True, text=True, timeout=60)


def full_folder(folder, wrong=0, sanitizer_errors=0, failed_step=False):
    steps = "# step\tstatus\texit\tseconds\tlog\tnote\n"
    steps += "build\tok\t0\t120.5\tbuild.log\t\n"
    steps += "coll_nccl2\texpected-failure\t3\t1.0\tcoll_nccl2.log\tneeds NCCL >= 2.30\n"
    if failed_step:
        steps += "layer_loopback\tfailed\t3\t2.0\tlayer_loopback.log\tboom\n"
    write(folder, "steps.tsv", steps)
    write(folder, "env.json", {"gpu": "NVIDIA H100 80GB HBM3", "driver": "580.159.04", "date": "2026-11-25"})
    write(folder, "bench.json", {"context": {}, "benchmarks": [
        {"name": "gemm/square8192/bf16/min_time:0.300/manual_time", "run_type": "iteration",
         "real_time": 1.4, "time_unit": "ms", "TFLOPS": 700.0},
        {"name": "gemm/gpt3_fc1/bf16/min_time:0.300/manual_time", "run_type": "iteration",
         "real_time": 0.9, "time_unit": "ms", "TFLOPS": 600.0},
        {"name": "gemm/square8192/fp8/min_time:0.300/manual_time", "run_type": "iteration",
         "real_time": 0.8, "time_unit": "ms", "TFLOPS": 1300.0},
        {"name": "copy_proxy/1GiB/ctas16/min_time:0.300/manual_time", "run_type": "iteration",
         "real_time": 1.0, "time_unit": "ms", "GBps": 750.0, "hbm_GBps": 1500.0, "ctas": 16},
        {"name": "memcpy_d2d/1GiB/min_time:0.300/manual_time", "run_type": "iteration",
         "real_time": 0.7, "time_unit": "ms", "GBps": 1500.0, "hbm_GBps": 3000.0},
        {"name": "layernorm/2048x12288/margin16/min_time:0.300/manual_time", "run_type": "iteration",
         "real_time": 0.05, "time_unit": "ms", "GBps": 1000.0, "ctas": 116},
    ]})
    write(folder, "torch.json", {"tool": "torch", "gemm": [
        {"name": "square8192", "m": 8192, "n": 8192, "k": 8192, "dtype": "bf16", "median_ms": 1.25, "tflops": 800.0},
        {"name": "gpt3_fc1", "m": 2048, "n": 12288, "k": 12288, "dtype": "bf16", "median_ms": 0.9, "tflops": 600.0},
    ], "copy": {"bytes": 1 << 30, "median_ms": 0.72, "GBps": 1490.0, "hbm_GBps": 2980.0}})
    loop = [case("pair-cdmc1-comm_first", {"cdmc": 1, "order": "comm_first"}, 2.0, 0.4, wrong),
            case("pair-cdmc8-comm_first", {"cdmc": 8, "order": "comm_first"}, 1.5, 0.1),
            case("renamed", {"cdmc": 32, "order": "gemm_first"}, 1.0, 0.2)]
    sim = [case("pair-cdmc1-comm_first", {"cdmc": 1, "order": "comm_first"}, 2.2, 0.5),
           case("pair-cdmc8-comm_first", {"cdmc": 8, "order": "comm_first"}, 1.2, 0.05),
           case("other-id", {"cdmc": 32, "order": "gemm_first"}, 1.0, 0.2)]
    write(folder, "pair_loopback.json", result_doc("loopback", loop))
    write(folder, "pair_sim.json", result_doc("sim", sim))
    write(folder, "layer_sim.json", result_doc("sim", sim[:1]))
    write(folder, "coll_nccl1_all_reduce.json", {"schema": "overlap-bench/coll/v1", "simulated": False,
        "tool": {}, "env": {"label": "cuda (NCCL, 1 ranks)"}, "rows": [
            {"size": 1048576, "count": 524288, "type": "bf16", "redop": "sum", "op": "all_reduce",
             "ranks": 1, "time_us": 12.5, "algbw_gbps": 83.9, "busbw_gbps": 0.0, "wrong": 0}]})
    parts = {"compute": 40.0, "tp_exposed": 0.0, "cp_exposed": 0.0, "dp_exposed": 0.0, "pp_exposed": 0.0,
             "bubble": 0.0, "optimizer": 8.0, "other": 2.0}
    for name, ms in (("step_cuda.json", 50.0), ("step_sim.json", 45.0)):
        write(folder, name, {"schema": "overlap-bench/step/v1", "simulated": name == "step_sim.json",
                             "tool": {}, "env": {}, "config": {}, "cases": [
                                 {"id": "step", "step_ms": stats(ms), "breakdown_ms": parts, "mfu": 0.4}]})
    write(folder, "sanitizer.log", f"========= COMPUTE-SANITIZER\n========= ERROR SUMMARY: {sanitizer_errors} errors\n")


def test_full_summary():
    with tempfile.TemporaryDirectory() as d:
        full_folder(d, wrong=5)
        r = run_summary(d)
        check("summary exit 0", r.returncode == 0, r.stderr)
        md = open(os.path.join(d, "summary.md"), encoding="utf-8").read()
        data = json.load(open(os.path.join(d, "summary.json"), encoding="utf-8"))
        check("title names the GPU", "NVIDIA H100 80GB HBM3" in md, md[:200])
        # GEMM: ours / torch on the same shape; fp8 has no torch twin.
        check("gemm ratio", "| square8192 | bf16 | 700.0 | 800.0 | 0.875 |" in md, md)
        check("gemm equal ratio", "| gpt3_fc1 | bf16 | 600.0 | 600.0 | 1.000 |" in md)
        check("fp8 row without torch", "| square8192 | fp8 | 1300.0 | — | — |" in md)
        check("gemm json", any(g["shape"] == "square8192" and abs(g["ratio"] - 0.875) < 1e-9 for g in data["gemm"]))
        # Copy proxy against cudaMemcpy D2D.
        check("copy ratio", "| copy_proxy/1GiB/ctas16 | 16 | 750.0 | 1500.0 | 0.500 |" in md, md)
        check("memcpy row", "cudaMemcpy D2D" in md and "torch copy_" in md)
        # Sim beside every loopback case, with its error %: 2.2 vs 2.0 -> +10.0%.
        check("sim error", "+10.0%" in md, md)
        check("sim error negative", "-20.0%" in md)
        # A case whose id differs is matched by its params.
        renamed = [x for x in data["pair"] if x["id"] == "renamed"]
        check("matched by params", renamed and renamed[0]["sim_ms"] == 1.0 and renamed[0]["error_pct"] == 0.0, str(renamed))
        check("mean abs error", abs(data["pair_mean_abs_error_pct"] - 10.0) < 1e-9, str(data.get("pair_mean_abs_error_pct")))
        # Wrong elements are loud and spoil the verdict.
        check("wrong bold", "**5**" in md)
        check("verdict attention", data["verdict"] == "ATTENTION" and "Verdict: **ATTENTION**" in md)
        check("wrong total", data["wrong_total"] == 5)
        check("expected failure is not a failure", data["failed_steps"] == [], str(data["failed_steps"]))
        check("layer without measurement", "No measurement (the sim predicted 1 case(s)" in md, md)
        check("coll table", "coll_nccl1_all_reduce" in md and "| all_reduce | 1 | 1048576 | 12.5 |" in md, md)
        check("sanitizer", data["sanitizer_errors"] == 0 and "0 error(s)" in md)
        check("steps table", "| coll_nccl2 | expected-failure | 3 |" in md, md)
        # The one-GPU step beside the simulator's: 45 vs 50 ms -> -10.0%.
        check("step section", "## step: one GPU" in md and "| cuda | step | 50.000 |" in md, md)
        check("step sim error", abs(data["step"]["sim_error_pct"] + 10.0) < 1e-9, str(data.get("step")))


def test_clean_pass_and_failures():
    with tempfile.TemporaryDirectory() as d:
        full_folder(d)
        run_summary(d)
        data = json.load(open(os.path.join(d, "summary.json"), encoding="utf-8"))
        check("clean verdict pass", data["verdict"] == "PASS", data["verdict"])
    with tempfile.TemporaryDirectory() as d:
        full_folder(d, failed_step=True)
        run_summary(d)
        data = json.load(open(os.path.join(d, "summary.json"), encoding="utf-8"))
        check("failed step spoils verdict", data["verdict"] == "ATTENTION" and data["failed_steps"] == ["layer_loopback"])
    with tempfile.TemporaryDirectory() as d:
        full_folder(d, sanitizer_errors=3)
        run_summary(d)
        data = json.load(open(os.path.join(d, "summary.json"), encoding="utf-8"))
        check("sanitizer errors spoil verdict", data["verdict"] == "ATTENTION" and data["sanitizer_errors"] == 3)


def test_empty_and_broken_inputs():
    with tempfile.TemporaryDirectory() as d:
        r = run_summary(d)
        check("empty folder ok", r.returncode == 0, r.stderr)
        md = open(os.path.join(d, "summary.md"), encoding="utf-8").read()
        check("empty says not run", "No steps.tsv" in md and "Not run." in md, md)
    with tempfile.TemporaryDirectory() as d:
        write(d, "bench.json", "{not json")
        r = run_summary(d, "--out", os.path.join(d, "s.md"))
        check("broken json tolerated", r.returncode == 0, r.stderr)
        md = open(os.path.join(d, "s.md"), encoding="utf-8").read()
        check("broken json reported", "bench.json: unreadable" in md, md)
        check("json beside custom out", os.path.exists(os.path.join(d, "s.json")))
    r = subprocess.run([PY, SUMMARY, "--dir", "/nonexistent/folder"], capture_output=True, text=True)
    check("missing folder exit 2", r.returncode == 2, str(r.returncode))


def test_dry_run_and_sm_margin():
    """A folder of fixtures (tests/data/gpu_results) as the dry run lays it out: the verdict says
    DRY RUN, never PASS, and the SM-margin table names the GEMM whose grid ignored its target."""
    fixtures = os.path.join(ROOT, "tests", "data", "gpu_results")
    with tempfile.TemporaryDirectory() as d:
        for name in os.listdir(fixtures):
            with open(os.path.join(fixtures, name), encoding="utf-8") as src:
                write(d, name, src.read())
        write(d, "steps.tsv", "# step\tstatus\texit\tseconds\tlog\tnote\n"
                              "bench\tfixture\t\t\t\tdry run\npair_sim\tok\t0\t0.1\tpair_sim.log\t\n")
        r = run_summary(d)
        check("dry-run summary exit 0", r.returncode == 0, r.stderr)
        with open(os.path.join(d, "summary.md"), encoding="utf-8") as f:
            text = f.read()
        check("dry-run verdict", "DRY RUN (fixtures, not measurements)" in text and "**PASS**" not in text, text[:300])
        check("sm margin section", "## SM margin" in text and "NOT a cap" in text, text)
        with open(os.path.join(d, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
        ignored = [x for x in summary["sm_margin"] if x["respected"] is False]
        check("sm margin: the sm100 fixtures are wider than their target", len(ignored) == 5, str(ignored))


def main():
    return CHECKS.run_all((test_full_summary, test_clean_pass_and_failures, test_empty_and_broken_inputs,
              test_dry_run_and_sm_margin))


if __name__ == "__main__":
    sys.exit(main())
