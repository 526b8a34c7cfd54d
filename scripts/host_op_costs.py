#!/usr/bin/env python3
"""Host time per eager PyTorch op and per kernel launch, measured in Kineto traces.

docs/MOE.md §20 explains what is measured and why. For each trace (PyTorch profiler JSON, plain
or gzip) it prints, per host thread that launches kernels:

- launch: the duration of each kernel-launch API call (cudaLaunchKernel*, cuLaunchKernel*);
- op: the duration of each top-level cpu_op (one not inside another cpu_op of its thread) that
  launches at least one kernel: dispatch, autograd recording and the launch, no Python;
- step: the time from one such op's start to the next one's, when no host sync (a blocking
  copy, a stream or device synchronize, an .item()) lies between them: the op and the
  framework's Python between two ops, i.e. what the host spends per eager op when it runs
  ahead of the GPU;
- c10d: each torch.distributed collective call (a cpu_op named c10d::*, outermost among them),
  by kind: its host time (ProcessGroupNCCL's bookkeeping, events, the NCCL enqueue and kernel
  launch, and the profiler's record_param_comms inside it), the part of it up to the end of its
  kernel launch, and how many profiler events it contains (each costs the profiler's own time);
and for the GPU: the kernels' busy time, their span and the largest idle gaps.

With --layer-marker NAME [--every N], the GPU timeline is also cut at every N-th kernel whose
name contains NAME (a layer's boundary: e.g. its all-reduce) and each piece's wall time, kernel
busy time and kernel count are given: what a layer costs when the host issues it.

Every figure is MEASURED from the trace named beside it. Usage:
  scripts/host_op_costs.py TRACE.json[.gz] ... [--json out.json] [--layer-marker NAME --every N]
"""
import argparse
import bisect
import gzip
import json
import sys

LAUNCH = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx",
          "cudaLaunchCooperativeKernel")
SYNC = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize",
        "cudaMemcpy", "aten::item", "aten::_local_scalar_dense")


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        doc = json.load(f)
    return doc, [e for e in doc.get("traceEvents", []) if e.get("ph") == "X" and "dur" in e]


def quantiles(xs):
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return {"n": 0}
    pick = lambda q: xs[min(n - 1, int(q * n))]
    return {"n": n, "p10": pick(0.1), "p50": pick(0.5), "p90": pick(0.9),
            "mean": sum(xs) / n}


def top_level(ops):
    """cpu_ops of one thread that no other cpu_op of that thread contains."""
    out, end = [], -1.0
    for e in sorted(ops, key=lambda e: (e["ts"], -e["dur"])):
        if e["ts"] >= end:
            out.append(e)
            end = e["ts"] + e["dur"]
    return out


def thread_costs(ops, launches, syncs):
    launch_ts = sorted(e["ts"] for e in launches)
    sync_ts = sorted(e["ts"] for e in syncs)

    def count(ts, lo, hi):
        return bisect.bisect_left(ts, hi) - bisect.bisect_left(ts, lo)

    eager = [e for e in top_level(ops) if count(launch_ts, e["ts"], e["ts"] + e["dur"]) > 0]
    pairs = [(a, b) for a, b in zip(eager, eager[1:]) if count(sync_ts, a["ts"], b["ts"]) == 0]
    steps = [b["ts"] - a["ts"] for a, b in pairs]
    launched = [count(launch_ts, a["ts"], b["ts"]) for a, b in pairs]
    kernels = sum(launched)
    backward = sum(1 for e in eager if e["name"].startswith("autograd::engine"))
    return {"role": "backward" if 2 * backward > len(eager) else "forward",
            "launch_us": quantiles([e["dur"] for e in launches]),
            "op_us": quantiles([e["dur"] for e in eager]),
            "step_us": quantiles(steps),
            "kernels_per_step": kernels / len(steps) if steps else 0.0,
            "per_kernel": [t / n for t, n in zip(steps, launched) if n]}


def c10d_calls(events):
    """Per c10d collective kind on one thread: the call's host time, the time to the end of its
    kernel launch, and the profiler events recorded inside it."""
    calls = top_level([e for e in events if e.get("cat") == "cpu_op"
                       and e["name"].startswith("c10d::")])
    inner = sorted(events, key=lambda e: e["ts"])
    starts = [e["ts"] for e in inner]
    out = {}
    for c in calls:
        end = c["ts"] + c["dur"]
        lo, hi = bisect.bisect_left(starts, c["ts"]), bisect.bisect_right(starts, end)
        inside = [e for e in inner[lo:hi] if e is not c and e["ts"] + e["dur"] <= end]
        launched = [e["ts"] + e["dur"] - c["ts"] for e in inside if e["name"] in LAUNCH]
        k = out.setdefault(c["name"], {"us": [], "to_launch_us": [], "events": []})
        k["us"].append(c["dur"])
        k["events"].append(len(inside))
        if launched:
            k["to_launch_us"].append(max(launched))
    return out


def gpu_costs(kernels):
    kernels = sorted(kernels, key=lambda e: e["ts"])
    if not kernels:
        return {}
    busy, end, gaps = 0.0, kernels[0]["ts"], []
    for k in kernels:  # union of kernel intervals over every stream
        if k["ts"] > end:
            gaps.append(k["ts"] - end)
        busy += max(0.0, k["ts"] + k["dur"] - max(end, k["ts"]))
        end = max(end, k["ts"] + k["dur"])
    span = end - kernels[0]["ts"]
    return {"kernels": len(kernels), "busy_us": busy, "span_us": span,
            "idle_share": 1 - busy / span if span else 0.0, "gap_us": quantiles(gaps)}


def layers(kernels, marker, every):
    kernels = sorted(kernels, key=lambda e: e["ts"])
    cuts = [k["ts"] for k in kernels if marker in k["name"]][::every]
    pieces = []
    for lo, hi in zip(cuts, cuts[1:]):
        inside = [k for k in kernels if lo <= k["ts"] < hi]
        pieces.append((hi - lo, sum(k["dur"] for k in inside), len(inside)))
    return {"layers": len(pieces), "wall_us": quantiles([p[0] for p in pieces]),
            "busy_us": quantiles([p[1] for p in pieces]),
            "kernels": quantiles([p[2] for p in pieces])}


def analyse(path, marker=None, every=1):
    doc, ev = load(path)
    props = doc.get("deviceProperties") or [{}]
    by_tid = {}
    for e in ev:
        by_tid.setdefault((e.get("pid"), e.get("tid")), []).append(e)
    threads, c10d = {}, {}
    for tid, es in by_tid.items():
        for kind, k in c10d_calls(es).items():
            acc = c10d.setdefault(kind, {"us": [], "to_launch_us": [], "events": []})
            for key in acc:
                acc[key] += k[key]
        launches = [e for e in es if e.get("cat") in ("cuda_runtime", "cuda_driver")
                    and e["name"] in LAUNCH]
        if not launches:
            continue
        ops = [e for e in es if e.get("cat") == "cpu_op"]
        syncs = [e for e in es if e["name"] in SYNC or
                 (e["name"] == "cudaMemcpyAsync" and e.get("dur", 0) > 50)]
        threads[str(tid[1])] = thread_costs(ops, launches, syncs)
    return {"trace": path, "device": props[0].get("name", "unknown"),
            "with_stack": bool(doc.get("with_stack")),
            "python_events": sum(1 for e in ev if e.get("cat") == "python_function"),
            "threads": threads, "c10d_raw": c10d,
            "c10d": {kind: {"us": quantiles(k["us"]), "to_launch_us": quantiles(k["to_launch_us"]),
                            "events": quantiles(k["events"])} for kind, k in c10d.items()},
            "gpu": gpu_costs([e for e in ev if e.get("cat") == "kernel"]),
            "layer": layers([e for e in ev if e.get("cat") == "kernel"], marker, every)
            if marker else None}


def fmt(q):
    if not q.get("n"):
        return "-"
    return f"{q['p50']:.1f} ({q['p10']:.1f}-{q['p90']:.1f}, n={q['n']})"


def pooled_c10d(results):
    """The figure a GPU file's c10d_call_us takes: every c10d collective call's host time, pooled
    over the traces without Python stacks, by kind and over every kind."""
    plain = [r for r in results if not r["python_events"]]
    kinds = sorted({kind for r in plain for kind in r["c10d_raw"]})
    every = []
    for kind in kinds:
        xs = [x for r in plain for x in r["c10d_raw"].get(kind, {}).get("us", [])]
        every += xs
        n = sum(1 for r in plain if kind in r["c10d_raw"])
        print(f"POOLED c10d {kind} over {n} traces: call µs p50 {fmt(quantiles(xs))}")
    if every:
        q = quantiles(every)
        print(f"POOLED c10d every kind over {len(plain)} traces without Python stacks: host µs "
              f"per collective call p50 {fmt(q)}, mean {q['mean']:.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--json")
    ap.add_argument("--layer-marker")
    ap.add_argument("--every", type=int, default=1)
    a = ap.parse_args()
    results = []
    for path in a.traces:
        try:
            r = analyse(path, a.layer_marker, a.every)
        except (OSError, ValueError) as x:
            print(f"{path}: not a readable Kineto trace: {x}", file=sys.stderr)
            return 2
        results.append(r)
        g = r["gpu"]
        print(f"MEASURED from {path}: {r['device']}, python stacks "
              f"{'on' if r['python_events'] else 'off'} ({r['python_events']} events)")
        print("  thread     role      launch µs p50 (p10-p90)     op µs p50 (p10-p90)"
              "         step µs p50 (p10-p90)        kernels/step")
        for tid, t in sorted(r["threads"].items(), key=lambda kv: -kv[1]["launch_us"]["n"]):
            print(f"  {tid:<10} {t['role']:<9} {fmt(t['launch_us']):<28} {fmt(t['op_us']):<28} "
                  f"{fmt(t['step_us']):<28} {t['kernels_per_step']:.2f}")
        if g:
            print(f"  GPU: {g['kernels']} kernels, busy {g['busy_us'] / 1e3:.2f} ms of "
                  f"{g['span_us'] / 1e3:.2f} ms (idle {100 * g['idle_share']:.1f} %), "
                  f"gap µs p50 {fmt(g['gap_us'])}")
        for kind, k in sorted(r["c10d"].items()):
            print(f"  {kind:<28} call µs {fmt(k['us']):<28} to its launch's end µs "
                  f"{fmt(k['to_launch_us']):<28} profiler events inside p50 {k['events']['p50']}")
        if r["layer"]:
            y = r["layer"]
            print(f"  per layer ({y['layers']} cut at every {a.every} '{a.layer_marker}'): wall "
                  f"µs {fmt(y['wall_us'])}, GPU busy µs {fmt(y['busy_us'])}, kernels "
                  f"{fmt(y['kernels'])}")
    # The figure a GPU file's eager_op_us takes: every sync-free step's host time per kernel it
    # launched, pooled over the traces recorded without Python stacks (the Python tracer adds
    # its own host time to every op).
    pooled = [x for r in results if not r["python_events"]
              for t in r["threads"].values() for x in t["per_kernel"]]
    launches = [t["launch_us"]["p50"] for r in results if not r["python_events"]
                for t in r["threads"].values()]
    if pooled:
        q = quantiles(pooled)
        print(f"POOLED over {sum(1 for r in results if not r['python_events'])} traces without "
              f"Python stacks: host µs per kernel of an eager op p50 {fmt(q)}, "
              f"mean {q['mean']:.1f}; launch call p50 over threads "
              f"{fmt(quantiles(launches))}")
    pooled_c10d(results)
    for r in results:
        del r["c10d_raw"]
        for t in r["threads"].values():
            del t["per_kernel"]
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
