#!/usr/bin/env python3
"""Solve a GPU file's `sim.gemm_efficiency[dtype]` so the GEMM model reads given GEMM points as an anchor GPU's model reads its own.

    scripts/fit_gemm_efficiency.py --gpu b200 --anchor h100_sxm configs/calibration/mamf/h100_sxm.csv \\
        configs/calibration/mamf/b200.csv

For each dtype d among the target points it bisects the efficiency until the mean
log(model / measured) of that dtype's points equals the anchor's: the mean log(model / measured)
of the anchor file, as shipped, at the anchor's points of dtype d (docs/CALIBRATION.md §2.12, the
H100-anchored transfer: a best-shape point read with the same bias as the GPU whose efficiencies
were fitted to a family of shapes). Without `--anchor` the target is zero (the model reproduces
the points; the absolute solve, not applied to any shipped file). Every other constant (setup,
unit overhead, tile, split-K, HBM overlap) stays as the file has it. Unlike `overlap-bench
calibrate` (which refits `gemm_setup_us` too) it moves only the efficiency. The model's TFLOP/s
come from `calibrate --check` on a temporary copy of the GPU file; nothing in the repository is
written. `sustained_clock_factor` does not enter: `calibrate` simulates a GEMM alone, at the
short-loop rate these points were measured at.
"""
import argparse
import json
import math
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from calibration_tables import ROOT, ROW, run  # noqa: E402


def fail(msg):
    """Bad input: exit 2 with the file and field named (as the tool's own commands do)."""
    print(msg, file=sys.stderr)
    sys.exit(2)


def model_points(binary, gpu_path, points, dtype):
    """{what: (measured, model TFLOP/s)} of the `dtype` GEMM points, as `calibrate --check` prints them."""
    out = run(binary, ["calibrate", "--check", "--gpu", gpu_path, points])
    rows = {}
    for line in out.splitlines():
        m = ROW.match(line)
        if m and m["unit"] == "TFLOP/s" and m["what"].split()[-1] == dtype:
            rows[m["what"].strip()] = (float(m["meas"]), float(m["model"]))
    return rows


def mean_log(rows):
    """Mean log(model / measured): the bias a dtype's points are read with."""
    return sum(math.log(model / meas) for meas, model in rows.values()) / len(rows)


def solve(binary, doc, dtype, points, target, tmp):
    """Efficiency of `dtype` where the mean log(model / measured) of its points is `target`."""
    path = os.path.join(tmp, "gpu.json")

    def at(eff):
        doc["sim"]["gemm_efficiency"][dtype]["value"] = eff
        with open(path, "w") as f:
            json.dump(doc, f)
        return model_points(binary, path, points, dtype)

    lo, hi = 0.3, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if mean_log(at(mid)) < target:
            lo = mid
        else:
            hi = mid
    eff = round((lo + hi) / 2, 4)
    if not 0.3 < eff < 1.0:
        fail(f"{points}: no {dtype} efficiency in (0.3, 1) reads its points at {target:+.4f}")
    return eff, at(eff)


def load_gpu(name):
    path = os.path.join(ROOT, "configs", "gpus", name + ".json")
    with open(path) as f:
        return path, json.load(f)


def dtypes_of(points):
    with open(points) as f:
        return sorted({line.split(",")[3] for line in f.read().splitlines()[1:] if line})


def print_rows(rows):
    for what, (meas, model) in rows.items():
        print(f"  {what}: measured {meas:.1f}, model {model:.1f} TFLOP/s, "
              f"{100 * (model / meas - 1):+.2f} %")


def anchor_target(binary, anchor, dtype):
    """The anchor GPU's mean log(model / measured) at its `dtype` points, its file as shipped."""
    gpu, points = anchor
    rows = model_points(binary, load_gpu(gpu)[0], os.path.abspath(points), dtype)
    if not rows:
        fail(f"{points}: no {dtype} point for the anchor {gpu}")
    target = mean_log(rows)
    print(f"anchor {gpu} {dtype}: model / measured {100 * math.expm1(target):+.2f} %")
    print_rows(rows)
    return target


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpu", required=True, help="GPU file name under configs/gpus/")
    ap.add_argument("--anchor", nargs=2, metavar=("GPU", "POINTS"),
                    help="anchor GPU file name and its points of the same kind")
    ap.add_argument("--bin", default="build/overlap-bench")
    ap.add_argument("points", help="GEMM points (M,N,K,dtype,TFLOP/s,source)")
    a = ap.parse_args()
    binary = os.path.abspath(os.path.join(ROOT, a.bin))
    points = os.path.abspath(a.points)
    doc = load_gpu(a.gpu)[1]
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in dtypes_of(points):
            if dtype not in doc["sim"]["gemm_efficiency"]:
                fail(f"{a.points}: dtype '{dtype}' has no sim.gemm_efficiency in {a.gpu}")
            target = anchor_target(binary, a.anchor, dtype) if a.anchor else 0.0
            eff, rows = solve(binary, json.loads(json.dumps(doc)), dtype, points, target, tmp)
            print(f"{a.gpu} sim.gemm_efficiency.{dtype} = {eff} "
                  f"(was {doc['sim']['gemm_efficiency'][dtype]['value']})")
            print_rows(rows)


if __name__ == "__main__":
    main()
