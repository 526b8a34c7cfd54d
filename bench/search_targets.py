#!/usr/bin/env python3
"""Search benchmark (README: which layout): `step --search` for Llama 3.1 70B on 64 H100 within
60 s and Llama 3.1 405B on 16,384 H100 within 3 minutes on a 2-core machine, each ending with a
proven best ("stopped by bound"). Prints each search's wall time, counts and answer; exits 1 when
a target is missed.

    bench/search_targets.py [--bin build/overlap-bench]

ctest runs it as bench.search_targets (label "benchmark"), which CI leaves out (-LE benchmark)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

TARGETS = [
    ("Llama 3.1 70B on 64 H100", 60,
     ["--model", "llama31_70b", "--gpus", "64", "--gbs", "128", "--seq", "8192"]),
    ("Llama 3.1 405B on 16,384 H100", 180,
     ["--model", "llama31_405b", "--gpus", "16384", "--gbs", "2048", "--seq", "8192"]),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/overlap-bench")
    args = ap.parse_args()
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, limit_s, flags in TARGETS:
            out = os.path.join(tmp, "s.json")
            cmd = [args.bin, "step", "--backend", "sim", "--search", "--cluster", "dgx_h100",
                   "-q", "--json", out] + flags
            t0 = time.monotonic()
            subprocess.run(cmd, check=True)
            wall = time.monotonic() - t0
            doc = json.load(open(out, encoding="utf-8"))
            n, best = doc["search"], doc["cases"][0]
            ok = wall <= limit_s and n["stopped_by"] == "bound"
            missed += not ok
            print("%-32s %6.1f s (target %d s) %s: %d simulated, stopped by %s; best %s, "
                  "%.1f ms (simulated)" % (name, wall, limit_s, "ok" if ok else "MISSED",
                                           n["simulated"], n["stopped_by"], best["id"],
                                           best["step_ms"]["median"]))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
