#!/usr/bin/env python3
"""Transfer the GPU files' `sim.flash_attention_efficiency` (fwd, bwd) to Blackwell GPUs from
measured fused-attention rates, anchored on the Hopper fraction the files already carry.

    scripts/fit_attention_efficiency.py configs/calibration/attention/cudnn_sdpa_llama31_8k.csv

Each row of the input is one GPU's cuDNN fused attention (TFLOP/s forward and backward, counted
as the model counts them: causal = half the scores, backward 2.5 x the forward) at one cuDNN
version. A GPU's measured fraction is its TFLOP/s over its file's bf16 peak. A GPU whose
efficiency is known (the anchor, `--anchor`, as its file ships it) passes it on to a GPU measured
with the same cuDNN version in the same suite: efficiency(g) = efficiency(known) x fraction(g) /
fraction(known), so the anchor's own bias (how its shipped fraction reads its measurement) is kept
and only the measured relation between the two GPUs carries over (docs/CALIBRATION.md §2.13).
Rows at another cuDNN version chain through a GPU measured at both. `--carry b200=gb200` gives a
GPU with no measurement another's efficiency (the same die: a fraction of its own peak). Prints
one line per GPU and pass, `gpu: sim.flash_attention_efficiency.fwd = 0.5108 (...)`; writes
nothing. Bad input exits 2 naming the file and field.
"""
import argparse
import csv
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSES = ("fwd", "bwd")


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(2)


def gpu_file(gpu):
    path = os.path.join(ROOT, "configs", "gpus", gpu + ".json")
    if not os.path.exists(path):
        fail(f"{path}: no GPU file for '{gpu}'")
    with open(path) as f:
        return path, json.load(f)


def bf16_peak(gpu):
    path, doc = gpu_file(gpu)
    try:
        return float(doc["peak_tflops"]["bf16"]["value"])
    except (KeyError, TypeError, ValueError):
        fail(f"{path}: peak_tflops.bf16.value: missing or not a number")


def shipped(gpu):
    path, doc = gpu_file(gpu)
    try:
        flash = doc["sim"]["flash_attention_efficiency"]
        return {p: float(flash[p]["value"]) for p in PASSES}
    except (KeyError, TypeError, ValueError):
        fail(f"{path}: sim.flash_attention_efficiency: fwd/bwd value missing or not a number")


def read_points(path):
    """[(gpu, cudnn, {pass: fraction of the bf16 peak})]"""
    points = []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                peak = bf16_peak(row["gpu"])
                frac = {p: float(row[p + "_tflops"]) / peak for p in PASSES}
                points.append((row["gpu"], row["cudnn"], frac))
            except (KeyError, TypeError, ValueError):
                fail(f"{path}:{line}: gpu, cudnn, fwd_tflops, bwd_tflops: missing or not a number")
            if not all(0 < v <= 1 for v in frac.values()):
                fail(f"{path}:{line}: fwd_tflops/bwd_tflops: not between 0 and the GPU's bf16 peak")
    return points


def transfer(points, anchor):
    """{gpu: ({pass: efficiency}, how)} reached from the anchor through shared cuDNN versions."""
    known = {anchor: (shipped(anchor), "the anchor, as shipped")}
    moved = True
    while moved:
        moved = False
        for gpu, version, frac in points:
            if gpu in known:
                continue
            for ref, ref_version, ref_frac in points:
                if ref in known and ref_version == version:
                    eff = {p: known[ref][0][p] * frac[p] / ref_frac[p] for p in PASSES}
                    known[gpu] = (eff, f"{ref}'s x the measured {gpu}/{ref} ratio at cuDNN {version}")
                    moved = True
                    break
    return known


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("points", help="CSV: gpu,cudnn,batch,fwd_tflops,bwd_tflops,source")
    ap.add_argument("--anchor", default="h200", help="GPU whose shipped efficiencies anchor the transfer")
    ap.add_argument("--carry", action="append", default=[], metavar="GPU=FROM",
                    help="give GPU the efficiencies found for FROM (repeatable)")
    args = ap.parse_args()
    if not os.path.exists(args.points):
        fail(f"{args.points}: no such file")
    known = transfer(read_points(args.points), args.anchor)
    for spec in args.carry:
        gpu, _, src = spec.partition("=")
        if src not in known:
            fail(f"--carry {spec}: '{src}' has no efficiency (not reached from the anchor)")
        known[gpu] = (known[src][0], f"{src}'s carried over")
    for gpu, (eff, how) in known.items():
        for p in PASSES:
            print(f"{gpu}: sim.flash_attention_efficiency.{p} = {eff[p]:.4f} ({how})")


if __name__ == "__main__":
    main()
