#!/usr/bin/env python3
"""Solve a GPU file's `sim.gemm_efficiency[dtype]` so the GEMM model reproduces given GEMM points.

    scripts/fit_gemm_efficiency.py --gpu b200 configs/calibration/b200/gemm_mamf.csv

For each dtype among the points it bisects the efficiency until the mean log error of that dtype's
points is zero, every other constant (setup, unit overhead, tile, split-K, HBM overlap) as the file
has it, then prints the value and each point's model TFLOP/s at it. Unlike `overlap-bench
calibrate` (which refits `gemm_setup_us` too) it moves only the efficiency: the per-CTA and
per-tile costs stay H100's fitted mechanism (docs/CALIBRATION.md §2.5). The model's TFLOP/s come
from `calibrate --check` on a temporary copy of the GPU file; nothing in the repository is
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


def model_errors(binary, gpu_path, points):
    """{what: (error %, model TFLOP/s)} of every GEMM point, as `calibrate --check` prints it."""
    out = run(binary, ["calibrate", "--check", "--gpu", gpu_path, points])
    errs = {}
    for line in out.splitlines():
        m = ROW.match(line)
        if m and m["unit"] == "TFLOP/s":
            what = m["what"].strip()
            errs[what] = (float(m["err"]), float(m["model"]))
    return errs


def solve(binary, doc, dtype, points, tmp):
    """Efficiency of `dtype` where the mean log(model / measured) of its points is zero."""
    path = os.path.join(tmp, "gpu.json")

    def mean_log(eff):
        doc["sim"]["gemm_efficiency"][dtype]["value"] = eff
        with open(path, "w") as f:
            json.dump(doc, f)
        errs = {w: e for w, e in model_errors(binary, path, points).items()
                if w.split()[-1] == dtype}
        return sum(math.log1p(e / 100) for e, _ in errs.values()) / len(errs), errs

    lo, hi = 0.3, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if mean_log(mid)[0] < 0:
            lo = mid
        else:
            hi = mid
    eff = round((lo + hi) / 2, 4)
    if not 0.3 < eff < 1.0:
        sys.exit(f"{points}: no {dtype} efficiency in (0.3, 1) reproduces its points")
    return eff, mean_log(eff)[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpu", required=True, help="GPU file name under configs/gpus/")
    ap.add_argument("--bin", default="build/overlap-bench")
    ap.add_argument("points", help="GEMM points (M,N,K,dtype,TFLOP/s,source)")
    a = ap.parse_args()
    binary = os.path.abspath(os.path.join(ROOT, a.bin))
    points = os.path.abspath(a.points)
    with open(os.path.join(ROOT, "configs", "gpus", a.gpu + ".json")) as f:
        doc = json.load(f)
    with open(points) as f:
        dtypes = sorted({line.split(",")[3] for line in f.read().splitlines()[1:] if line})
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in dtypes:
            if dtype not in doc["sim"]["gemm_efficiency"]:
                sys.exit(f"{a.points}: dtype '{dtype}' has no sim.gemm_efficiency in {a.gpu}")
            eff, errs = solve(binary, json.loads(json.dumps(doc)), dtype, points, tmp)
            print(f"{a.gpu} sim.gemm_efficiency.{dtype} = {eff} "
                  f"(was {doc['sim']['gemm_efficiency'][dtype]['value']})")
            for what, (err, model) in errs.items():
                print(f"  {what}: model {model:.1f} TFLOP/s, {err:+.2f} %")


if __name__ == "__main__":
    main()
