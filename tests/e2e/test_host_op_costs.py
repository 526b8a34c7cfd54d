#!/usr/bin/env python3
"""scripts/host_op_costs.py, the measurement behind the GPU files' eager_op_us and c10d_call_us
(docs/MOE.md §20, §20.1):
on a synthetic Kineto trace whose every figure is known, on the public HolisticTraceAnalysis pair
in tests/data/traces/hta_trace_filter/, and on bad input.

Standard library only. Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import gzip
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.environ.get("OB_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "host_op_costs.py")
HTA = os.path.join(ROOT, "tests", "data", "traces", "hta_trace_filter")
PY = sys.executable or "python3"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from script_checks import Checks  # noqa: E402

CHECKS = Checks()
check = CHECKS.check


def run(*args):
    p = subprocess.run([PY, SCRIPT, *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def x(cat, name, ts, dur, tid=1, **extra):
    return {"ph": "X", "cat": cat, "name": name, "pid": 1, "tid": tid, "ts": ts, "dur": dur,
            **extra}


def synthetic():
    """Five eager ops 40 µs apart on the main thread, each one aten op (15 µs) with one 5 µs
    launch inside, its kernel 10 µs on the GPU; a blocking copy between ops 3 and 4. So: launch
    5, op 15, steps of 40 (three: the copy's interval is left out), 1 kernel a step, the GPU busy
    10 µs of every 40, every gap 30 µs; a nested op inside op 0 is not counted again."""
    ev = []
    for i in range(5):
        t = 40.0 * i
        ev.append(x("cpu_op", "aten::mul", t, 15))
        ev.append(x("cuda_runtime", "cudaLaunchKernel", t + 5, 5))
        ev.append(x("kernel", "mul_kernel" if i % 2 else "allreduce_marker", t + 12, 10,
                    tid=7, pid=0))
    ev.append(x("cpu_op", "aten::empty", 1, 2))  # inside op 0: not top level
    ev.append(x("cuda_runtime", "cudaStreamSynchronize", 120 + 20, 3))
    # Two c10d calls on a communication thread: an all-reduce of 90 µs whose launch ends 50 µs
    # in (one profiler event and one launch inside it), an all-to-all of 60 µs with no launch;
    # an inner c10d op is not a call of its own.
    ev.append(x("cpu_op", "c10d::allreduce_", 300, 90, tid=2))
    ev.append(x("cpu_op", "record_param_comms", 305, 80, tid=2))
    ev.append(x("cuda_runtime", "cudaLaunchKernel", 340, 10, tid=2))
    ev.append(x("cpu_op", "c10d::alltoall_base_", 500, 60, tid=2))
    ev.append(x("cpu_op", "c10d::_allgather_base_", 510, 20, tid=2))
    return {"deviceProperties": [{"name": "Test GPU"}], "traceEvents": ev}


def test_synthetic_figures():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.json.gz")
        with gzip.open(path, "wt") as f:
            json.dump(synthetic(), f)
        out_json = os.path.join(d, "r.json")
        code, out, err = run(path, "--json", out_json, "--layer-marker", "allreduce_marker",
                             "--every", "1")
        check("synthetic exits 0", code == 0, err)
        check("says MEASURED and names the trace", f"MEASURED from {path}: Test GPU" in out, out)
        with open(out_json) as f:
            r = json.load(f)[0]
        t = r["threads"]["1"]
        check("launch p50 5", t["launch_us"]["p50"] == 5, t)
        check("op p50 15, nested op not counted", t["op_us"] == {
            "n": 5, "p10": 15, "p50": 15, "p90": 15, "mean": 15}, t["op_us"])
        check("steps: 40 µs, the copy's interval left out", t["step_us"]["n"] == 3
              and t["step_us"]["p50"] == 40, t["step_us"])
        check("one kernel a step", t["kernels_per_step"] == 1.0, t)
        g = r["gpu"]
        check("GPU busy 50 of 170 µs", g["busy_us"] == 50 and g["span_us"] == 170, g)
        check("gaps 30 µs", g["gap_us"]["p50"] == 30 and g["gap_us"]["n"] == 4, g)
        y = r["layer"]
        check("layers cut at the marker: 2, 80 µs wall, 20 busy, 2 kernels",
              y["layers"] == 2 and y["wall_us"]["p50"] == 80 and y["busy_us"]["p50"] == 20
              and y["kernels"]["p50"] == 2, y)
        check("pooled line: 40 µs a kernel", "host µs per kernel of an eager op p50 40.0" in out,
              out)
        c = r["c10d"]
        check("c10d kinds: the outer calls only", sorted(c) == ["c10d::allreduce_",
                                                              "c10d::alltoall_base_"], c)
        a = c.get("c10d::allreduce_", {})
        check("all-reduce call 90 µs, its launch ends 50 µs in, 2 events inside",
              a.get("us", {}).get("p50") == 90 and a["to_launch_us"]["p50"] == 50
              and a["events"]["p50"] == 2, a)
        b = c.get("c10d::alltoall_base_", {})
        check("all-to-all 60 µs, no launch", b.get("us", {}).get("p50") == 60
              and b["to_launch_us"]["n"] == 0, b)
        check("pooled c10d line: p50 of 60 and 90", "per collective call p50 90.0" in out, out)


def test_the_public_hta_pair():
    traces = [os.path.join(HTA, f"sampled_rank-{r}.json.gz") for r in (0, 1)]
    code, out, err = run(*traces)
    check("hta pair exits 0", code == 0, err)
    check("both ranks measured", out.count("MEASURED from") == 2, out)
    check("a forward and a backward thread each", out.count(" forward ") == 2
          and out.count(" backward ") == 2, out)
    # The mechanism behind eager_op_us: an eager op costs the host several launch calls' time.
    line = [ln for ln in out.splitlines() if ln.startswith("POOLED over")]
    check("a pooled line", len(line) == 1, out)
    if line:
        per_kernel = float(line[0].split("p50 ")[1].split(" ")[0])
        launch = float(line[0].split("over threads ")[1].split(" ")[0])
        check("an eager op costs more than twice its launch call", per_kernel > 2 * launch,
              line[0])
        # The mechanism behind c10d_call_us: a torch.distributed collective costs the host far
        # more than its kernel's launch call (ProcessGroupNCCL's events, work object, NCCL enqueue).
        c10d = [ln for ln in out.splitlines() if ln.startswith("POOLED c10d every kind")]
        check("a pooled c10d line", len(c10d) == 1, out)
        if c10d:
            call = float(c10d[0].split("call p50 ")[1].split(" ")[0])
            check("a c10d call costs the host more than ten launch calls", call > 10 * launch,
                  c10d[0])
    for kind in ("allreduce_", "alltoall_base_", "_allgather_base_"):
        check(f"c10d::{kind} measured on both ranks", out.count(f"  c10d::{kind} ") == 2, out)


def test_bad_input_exits_2_naming_the_file():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "broken.json")
        with open(path, "w") as f:
            f.write("{not json")
        code, _, err = run(path)
        check("bad input exits 2", code == 2, err)
        check("names the file", path in err, err)


if __name__ == "__main__":
    sys.exit(CHECKS.run_all([test_synthetic_figures, test_the_public_hta_pair,
                             test_bad_input_exits_2_naming_the_file]))
