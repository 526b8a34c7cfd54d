#!/usr/bin/env python3
"""Load benchmark (README: reliability, load): a 100,000-case simulated `run` sweep must finish
with peak memory under 1 GB and write valid JSON. The JSON is streamed from the journal, case by
case, so memory does not grow with a second copy of the whole document. Prints the wall time and
the peak resident set (GNU time -v) and fails above the limit.

    bench/load_sweep.py [--bin build/overlap-bench] [--cases 100000] [--limit-mib 1024]

ctest runs it as bench.load_sweep (label "benchmark"), which CI leaves out (-LE benchmark)."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def sweep_args(cases):
    """--set axes whose product is `cases` (a multiple of 1,000): cdmc 25 x order 2 x comm_ctas
    10 x priority 2 x sm_margin cases/1000 (comm_ctas stops at NCCL's 64 channels)."""
    margins = cases // 1000
    assert margins * 1000 == cases and margins >= 1, "--cases must be a multiple of 1000"
    return ["--set", "cdmc=" + ",".join(str(i) for i in range(1, 26)),
            "--set", "method=preset", "--set", "order=comm_first,gemm_first",
            "--set", "comm_ctas=" + ",".join(str(i) for i in range(10)),
            "--set", "priority=comm_high,equal",
            "--set", "sm_margin=" + ",".join(str(i) for i in range(margins))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("OB_BIN", os.path.join(ROOT, "build",
                                                                         "overlap-bench")))
    ap.add_argument("--cases", type=int, default=100000)
    ap.add_argument("--limit-mib", type=float, default=1024)
    a = ap.parse_args()
    env = dict(os.environ, OVERLAP_BENCH_CONFIGS=os.path.join(ROOT, "configs"))
    env.pop("CUDA_DEVICE_MAX_CONNECTIONS", None)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "load.json")
        cmd = ["/usr/bin/time", "-v", a.bin, "run", "--backend", "sim", "-q", "--json", out]
        start = time.time()
        p = subprocess.run(cmd + sweep_args(a.cases), capture_output=True, text=True, env=env)
        wall = time.time() - start
        if p.returncode != 0:
            sys.exit("load_sweep: exit %d\n%s" % (p.returncode, p.stderr[-4000:]))
        rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
        size_mib = os.path.getsize(out) / 2**20
        with open(out) as f:
            doc = json.load(f)
        assert doc["schema"].startswith("overlap-bench/result/"), doc.get("schema")
        assert len(doc["cases"]) == a.cases, len(doc["cases"])
        assert not os.path.exists(out + ".journal"), "the journal of a finished sweep is removed"
    print("load_sweep: %d cases in %.1f s, peak RSS %.0f MiB, JSON %.0f MiB, valid"
          % (a.cases, wall, rss_kib / 1024, size_mib))
    if rss_kib / 1024 > a.limit_mib:
        sys.exit("load_sweep: peak RSS %.0f MiB is over the %.0f MiB limit"
                 % (rss_kib / 1024, a.limit_mib))


if __name__ == "__main__":
    main()
