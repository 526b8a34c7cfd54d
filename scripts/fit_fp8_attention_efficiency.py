#!/usr/bin/env python3
"""Derive the GPU files' `sim.flash_attention_efficiency.fp8` and `.mxfp8` (fwd, bwd): cuDNN's
fused attention on fp8 inputs, as a fraction of the bf16 peak, from measured fp8-over-bf16 rates.

    scripts/fit_fp8_attention_efficiency.py configs/calibration/attention/cudnn_sdpa_fp8_llama31_8k.csv \\
        --carry h100_sxm=h200 --carry b200=gb200 --carry b300=gb300

Each row of the input is one GPU's cuDNN fused attention at one input type (bf16, fp8 with
per-tensor scales, mxfp8 with block scales), TFLOP/s forward and backward, all rows of a GPU from
one run (the same cuDNN version and batch). The measured ratio of an fp8 rate to the bf16 rate of
the same run multiplies the bf16 efficiency the GPU's file ships (`flash_attention_efficiency.fwd`
and `.bwd`): efficiency(fp8) = efficiency(bf16) x rate(fp8) / rate(bf16), so the file's bf16 anchor
is kept and only the measured relation carries over (docs/CALIBRATION.md §2.15). `--carry
b200=gb200` gives a GPU with no measurement the ratios of another (the same die), times its own
file's bf16 efficiency. Prints one line per GPU, type and pass,
`gpu: sim.flash_attention_efficiency.mxfp8.fwd = 0.6172 (...)`; writes nothing. Bad input exits 2
naming the file and field.
"""
import argparse
import csv
import os
import sys

# The bf16 fractions the GPU files ship, read as the bf16 fit reads them.
from fit_attention_efficiency import PASSES, fail
from fit_attention_efficiency import shipped as shipped_bf16

LOW = ("fp8", "mxfp8")


def read_rates(path):
    """{gpu: {dtype: ({pass: TFLOP/s}, cudnn, batch)}}"""
    rates = {}
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                tflops = {p: float(row[p + "_tflops"]) for p in PASSES}
                key = (row["gpu"], row["dtype"], row["cudnn"], row["batch"])
            except (KeyError, TypeError, ValueError):
                fail(f"{path}:{line}: gpu, cudnn, batch, dtype, fwd_tflops, bwd_tflops: missing or not a number")
            if key[1] not in ("bf16",) + LOW:
                fail(f"{path}:{line}: dtype: expected bf16, fp8 or mxfp8, got '{key[1]}'")
            if not all(v > 0 for v in tflops.values()):
                fail(f"{path}:{line}: fwd_tflops/bwd_tflops: not above 0")
            rates.setdefault(key[0], {})[key[1]] = (tflops, key[2], key[3])
    return rates


def ratios(path, rates):
    """{gpu: {dtype: ({pass: fp8 / bf16}, how)}} for each GPU with a bf16 row of the same run."""
    out = {}
    for gpu, by_type in rates.items():
        if "bf16" not in by_type:
            fail(f"{path}: {gpu}: no bf16 row to divide its fp8 rates by")
        base, cudnn, batch = by_type["bf16"]
        for t in LOW:
            if t not in by_type:
                continue
            low, low_cudnn, low_batch = by_type[t]
            if (low_cudnn, low_batch) != (cudnn, batch):
                fail(f"{path}: {gpu} {t}: cudnn/batch differ from its bf16 row (not one run)")
            r = {p: low[p] / base[p] for p in PASSES}
            out.setdefault(gpu, {})[t] = (r, f"{t} / bf16 measured on {gpu} at cuDNN {cudnn}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("points", help="CSV: gpu,cudnn,batch,dtype,fwd_tflops,bwd_tflops,source")
    ap.add_argument("--carry", action="append", default=[], metavar="GPU=FROM",
                    help="give GPU the measured ratios of FROM (repeatable)")
    args = ap.parse_args()
    if not os.path.exists(args.points):
        fail(f"{args.points}: no such file")
    found = ratios(args.points, read_rates(args.points))
    for spec in args.carry:
        gpu, _, src = spec.partition("=")
        if src not in found:
            fail(f"--carry {spec}: '{src}' has no measured fp8 rates")
        found[gpu] = {t: (r, how + f", carried to {gpu}") for t, (r, how) in found[src].items()}
    for gpu, by_type in found.items():
        bf16 = shipped_bf16(gpu)
        for t, (r, how) in by_type.items():
            for p in PASSES:
                print(f"{gpu}: sim.flash_attention_efficiency.{t}.{p} = {bf16[p] * r[p]:.4f} "
                      f"({bf16[p]:.4f} x {r[p]:.4f}: {how})")


if __name__ == "__main__":
    main()
