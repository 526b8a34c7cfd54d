#!/usr/bin/env python3
"""Writes tests/data/gpu_results/: files shaped like a scripts/device_validate.sh --quick results
folder on one H100, for the dry run, the summary and calibrate's tests. They are NOT
measurements: every document says "fixture" at its top, the result documents are the
simulator's output relabelled as the GPU backends would label theirs, and the benchmark
numbers are round values. Regenerate after a result schema change:

    python3 tests/data/make_gpu_fixtures.py --bin build/overlap-bench
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "gpu_results")
SRC = os.path.dirname(os.path.dirname(HERE))
NOTE = "shaped like a device_validate.sh output, not measured (tests/data/make_gpu_fixtures.py)"

# The same commands as scripts/device_validate.sh --quick, on the simulator.
PAIR = ["pair", "--gemm", "8192x8192x8192", "--dtype", "bf16", "--coll", "all_gather", "--bytes", "256MiB",
        "--ranks", "8", "--cdmc", "1,8", "--order", "comm_first,gemm_first", "--sm-margin", "0,32"]
LAYER = ["run", "--config", os.path.join(SRC, "configs", "scenarios", "default_layer.json"), "--set", "cdmc=1,8",
         "--set", "sm_margin=0,32", "--set", "te_launch_ordering=off"]
STEP = ["step", "--model", "gpt3_20b", "--gpus", "1", "--tp", "1", "--pp", "1", "--layers", "2", "--gbs", "4",
        "--seq", "2048", "--cdmc", "8", "--te-launch-ordering", "off"]
COLL1 = ["coll", "--ranks", "1", "--op", "all_gather", "--min", "1MiB", "--max", "256MiB", "--factor", "4"]
COLL2 = ["coll", "--ranks", "2", "--op", "all_reduce", "--min", "1MiB", "--max", "64MiB", "--factor", "4"]

GEMMS = {"square8192": (8192, 8192, 8192), "gpt3_qkv": (2048, 9216, 12288), "gpt3_proj": (2048, 12288, 3072),
         "gpt3_fc1": (2048, 12288, 12288), "gpt3_fc2": (2048, 12288, 12288)}


def sim_doc(binary, args):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "doc.json")
        subprocess.run([binary] + args + ["--backend", "sim", "-q", "--json", path], check=True)
        with open(path, encoding="utf-8") as f:
            return json.load(f)


def as_measured(doc, backend, label, extra_env=None):
    """The simulator's document relabelled as a GPU backend writes it."""
    doc = dict(doc)
    doc["simulated"] = False
    env = dict(doc.get("env", {}))
    # The readers are strict about the top level; env is the run's free-form description.
    env.update({"backend": backend, "simulated": False, "label": label + " [FIXTURE, not measured]",
                "fixture": NOTE})
    env.pop("sim_model", None)
    env["device"] = {"name": "NVIDIA H100 80GB HBM3", "sm_count": 132, "compute_capability": "9.0",
                     "sm_clock_mhz": {"current": 1980, "default": 1980, "max": 1980}}
    env.update(extra_env or {})
    doc["env"] = env
    return doc


def bench_entry(name, **counters):
    entry = {"name": name + "/min_time:0.300/manual_time", "run_name": name + "/min_time:0.300/manual_time",
             "run_type": "iteration", "iterations": 100, "real_time": 1.0, "cpu_time": 0.05, "time_unit": "ms"}
    entry.update(counters)
    return entry


def bench_doc():
    entries = []
    for name, (m, n, k) in GEMMS.items():
        entries.append(bench_entry(f"gemm/{name}/bf16", m=m, n=n, k=k, TFLOPS=700.0, sm_count=132, sm_target=0,
                                   grid_ctas=132, kernels=1, target_respected=1))
        for target, grid in ((116, 116), (100, 132)):
            entries.append(bench_entry(f"gemm/{name}/bf16/sm{target}", m=m, n=n, k=k, TFLOPS=600.0,
                                       sm_count=132, sm_target=target, grid_ctas=grid, kernels=1,
                                       target_respected=int(grid <= target)))
    entries.append(bench_entry("gemm/square8192/fp8", m=8192, n=8192, k=8192, TFLOPS=1300.0, sm_count=132,
                               sm_target=0, grid_ctas=132, kernels=1, target_respected=1))
    for ctas in (8, 16, 132):
        entries.append(bench_entry(f"copy_proxy/1GiB/ctas{ctas}", GBps=100.0 * ctas ** 0.5, hbm_GBps=200.0 * ctas ** 0.5,
                                   bytes=float(1 << 30), ctas=ctas))
    entries.append(bench_entry("memcpy_d2d/1GiB", GBps=1450.0, hbm_GBps=2900.0, bytes=float(1 << 30)))
    for margin in (0, 32):
        entries.append(bench_entry(f"layernorm/2048x12288/margin{margin}", GBps=1200.0, hbm_GBps=2400.0,
                                   bytes=float(2048 * 12288 * 2), ctas=132 - margin))
    entries.append(bench_entry("pair/gemm8192_copy256MiB/ctas16", ms=1.9, ctas=16, bytes=float(256 << 20)))
    return {"fixture": NOTE, "context": {"executable": "bench_cuda", "num_cpus": 16, "library_build_type": "release"},
            "benchmarks": entries}


def write(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        if isinstance(obj, str):
            f.write(obj)
        else:
            json.dump(obj, f, indent=1)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "overlap-bench"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    loop = "loopback (no NVLink)"
    write("pair_loopback.json", as_measured(sim_doc(args.bin, PAIR), "loopback", loop))
    write("pair_graphs_loopback.json", as_measured(sim_doc(args.bin, PAIR), "loopback", loop))
    write("layer_loopback.json", as_measured(sim_doc(args.bin, LAYER), "loopback", loop))
    write("step_cuda.json", as_measured(sim_doc(args.bin, STEP), "cuda", "cuda (NCCL, 1 ranks)"))
    write("coll_nccl1_all_gather.json", as_measured(sim_doc(args.bin, COLL1), "cuda", "cuda (NCCL, 1 ranks)"))
    write("coll_nccl2_all_reduce.json", as_measured(sim_doc(args.bin, COLL2), "cuda", "cuda (NCCL, 2 ranks)",
                                                     {"ranks_share_gpus": True, "world_size": 2}))
    write("bench.json", bench_doc())
    write("torch.json", {"fixture": NOTE, "tool": "torch", "torch_version": "2.11.0+cu130", "cuda": "13.0",
                         "device": "NVIDIA H100 80GB HBM3", "sm_count": 132,
                         "gemm": [{"name": n, "m": m, "n": nn, "k": k, "dtype": "bf16", "median_ms": 1.0,
                                   "tflops": 720.0} for n, (m, nn, k) in GEMMS.items()],
                         "copy": {"bytes": 1 << 30, "median_ms": 0.74, "GBps": 1450.0, "hbm_GBps": 2900.0}})
    write("env.json", {"fixture": NOTE, "gpu": "NVIDIA H100 80GB HBM3", "date": "2026-12-05", "host": "fixture",
                       "driver": "580.159.04", "nvcc": "Build cuda_13.0", "torch": "2.11.0+cu130", "cuda": "13.0",
                       "nccl": "2.28.9", "inherited_cuda_device_max_connections": ""})
    write("sanitizer.log", "========= COMPUTE-SANITIZER\n========= ERROR SUMMARY: 0 errors\n")
    write("coll_nccl2.log", "overlap-bench: error: more ranks (2) than GPUs per node (1): several ranks on one GPU "
                            "need NCCL >= 2.30 with NCCL_MULTI_RANK_GPU_ENABLE=1, but the loaded NCCL is 2.28.9; "
                            "run one rank per GPU, or --backend loopback\n")
    print(f"wrote fixtures into {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
