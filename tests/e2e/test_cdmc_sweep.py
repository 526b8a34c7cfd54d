#!/usr/bin/env python3
"""scripts/sweep_cdmc.sh and scripts/merge_cdmc.py without a GPU: merging rules on synthetic
documents, the sweep driving a fake launcher (checks -x forwarding, per-value --cdmc and --json
rewriting, failure handling), and, when OB_BIN is set, a real sim sweep whose merge the binary's
strict reader accepts.

Standard library only. Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import json
import os
import stat
import subprocess
import sys
import tempfile

ROOT = os.environ.get("OB_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MERGE = os.path.join(ROOT, "scripts", "merge_cdmc.py")
SWEEP = os.path.join(ROOT, "scripts", "sweep_cdmc.sh")
PY = sys.executable or "python3"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from script_checks import Checks  # noqa: E402

CHECKS = Checks()
check = CHECKS.check


def doc(cdmc, cases, simulated=False, gpu="NVIDIA H100", tool=None):
    return {"schema": "overlap-bench/result/v1", "simulated": simulated, "tool": tool or {"version": "0.1.0", "git_sha": "abc"},
            "env": {"backend": "sim" if simulated else "loopback", "simulated": simulated, "cdmc": cdmc,
                    "device": {"name": gpu, "sm_clock_mhz": {"current": 1000 + cdmc}},
                    "variables": {"CUDA_DEVICE_MAX_CONNECTIONS": str(cdmc), "NCCL_DEBUG": "WARN"}},
            "config": {}, "cases": [{"id": c, "scenario": "pair", "params": {"order": "comm_first"}} for c in cases]}


def write(folder, name, obj):
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    return path


def merge(*args):
    return subprocess.run([PY, MERGE, *args], capture_output=True, text=True, timeout=60)


def test_merge_rules():
    with tempfile.TemporaryDirectory() as d:
        a = write(d, "r.cdmc1.json", doc(1, ["x"]))
        b = write(d, "r.cdmc8.json", doc(8, ["x", "y"]))
        out = os.path.join(d, "merged.json")
        r = merge("--out", out, a, b)
        check("merge ok", r.returncode == 0, r.stderr)
        m = json.load(open(out, encoding="utf-8"))
        check("cases concatenated", len(m["cases"]) == 3)
        check("params tagged", [c["params"]["cdmc"] for c in m["cases"]] == [1, 8, 8])
        check("duplicate id made unique", [c["id"] for c in m["cases"]] == ["x", "x-cdmc8", "y"], str([c["id"] for c in m["cases"]]))
        check("env lists values", m["env"]["cdmc"] == [1, 8])
        check("variable says swept", m["env"]["variables"]["CUDA_DEVICE_MAX_CONNECTIONS"] == "swept: 1,8")
        check("other variables kept", m["env"]["variables"]["NCCL_DEBUG"] == "WARN")
        check("no temp files left", sorted(os.listdir(d)) == ["merged.json", "r.cdmc1.json", "r.cdmc8.json"], str(os.listdir(d)))

        # Value from VALUE=FILE when neither env nor file name says it.
        plain = doc(4, ["z"])
        del plain["env"]["cdmc"]
        p = write(d, "plain.json", plain)
        r = merge("--out", out, p)
        check("no value is an error", r.returncode == 2 and "VALUE=" in r.stderr, r.stderr)
        r = merge("--out", out, "4=" + p)
        check("explicit value", r.returncode == 0 and json.load(open(out))["cases"][0]["params"]["cdmc"] == 4, r.stderr)

        bad = {
            "mixed simulated": doc(32, ["q"], simulated=True),
            "other gpu": doc(32, ["q"], gpu="NVIDIA B200"),
            "other tool": doc(32, ["q"], tool={"version": "0.2.0", "git_sha": "def"}),
        }
        for name, other in bad.items():
            c = write(d, "other.cdmc32.json", other)
            r = merge("--out", os.path.join(d, "bad.json"), a, c)
            check(f"{name} refused", r.returncode == 2 and "error" in r.stderr, r.stderr)
            check(f"{name} writes nothing", not os.path.exists(os.path.join(d, "bad.json")))
        conflict = doc(32, ["q"])
        conflict["cases"][0]["params"]["cdmc"] = 8
        c = write(d, "conflict.cdmc32.json", conflict)
        r = merge("--out", os.path.join(d, "bad.json"), c)
        check("params conflict refused", r.returncode == 2 and "params.cdmc" in r.stderr, r.stderr)
        r = merge("--out", os.path.join(d, "bad.json"), a, "1=" + b)
        check("same value twice refused", r.returncode == 2, r.stderr)
        notschema = write(d, "junk.cdmc2.json", {"schema": "something/else"})
        r = merge("--out", os.path.join(d, "bad.json"), notschema)
        check("wrong schema refused", r.returncode == 2 and "schema" in r.stderr, r.stderr)


FAKE_BENCH = r'''
import json, os, sys
args = sys.argv[1:]
out = args[args.index("--json") + 1]
cdmc = int(os.environ["CUDA_DEVICE_MAX_CONNECTIONS"])
flag = int(args[args.index("--cdmc") + 1])
if cdmc == 13:
    sys.exit(4)
doc = {"schema": "overlap-bench/result/v1", "simulated": False, "tool": {}, "env": {"backend": "loopback",
       "simulated": False, "cdmc": cdmc}, "config": {}, "cases": [{"id": "c%d" % flag, "scenario": "pair",
       "params": {"cdmc": flag}}]}
json.dump(doc, open(out, "w"))
'''

FAKE_MPIRUN = r'''#!/bin/bash
if [ "$1" = "--version" ]; then echo "mpirun (Open MPI) 4.1.4"; exit 0; fi
echo "$@" >> "$(dirname "$0")/mpirun.args"
args=()
while [ $# -gt 0 ]; do
  case "$1" in -np) shift 2 ;; -x) shift 2 ;; *) args+=("$1"); shift ;; esac
done
exec "${args[@]}"
'''


def test_sweep_with_fake_launcher():
    with tempfile.TemporaryDirectory() as d:
        bench = os.path.join(d, "fake_bench.py")
        open(bench, "w").write(FAKE_BENCH)
        mpirun = os.path.join(d, "mpirun")
        open(mpirun, "w").write(FAKE_MPIRUN)
        os.chmod(mpirun, os.stat(mpirun).st_mode | stat.S_IEXEC)
        out = os.path.join(d, "res.json")
        cmd = ["bash", SWEEP, "--values", "1,8", "--", mpirun, "-np", "2", PY, bench, "pair", "--cdmc", "4",
               "--json", out]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        check("sweep ok", r.returncode == 0, r.stderr)
        m = json.load(open(out, encoding="utf-8")) if os.path.exists(out) else {"cases": [], "env": {}}
        check("sweep merged both", [c["params"]["cdmc"] for c in m["cases"]] == [1, 8], str(m["cases"]))
        check("parts kept", os.path.exists(os.path.join(d, "res.cdmc1.json")) and os.path.exists(os.path.join(d, "res.cdmc8.json")))
        launched = open(os.path.join(d, "mpirun.args")).read()
        check("open mpi -x forwarding", launched.count("-x CUDA_DEVICE_MAX_CONNECTIONS") == 2, launched)
        check("user --cdmc replaced", "--cdmc 4" not in launched and "--cdmc 1" in launched, launched)

        # A hung value (exit 4) is reported, the others are merged, the exit code is the failure's.
        out2 = os.path.join(d, "res2.json")
        cmd = ["bash", SWEEP, "--values", "13,8", "--", PY, bench, "pair", "--json", out2]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        check("failure exit code kept", r.returncode == 4, f"{r.returncode} {r.stderr}")
        m = json.load(open(out2, encoding="utf-8")) if os.path.exists(out2) else {"cases": []}
        check("good values still merged", [c["params"]["cdmc"] for c in m["cases"]] == [8], str(m["cases"]))

    for bad in (["--", "x"], ["--values", "0", "--", "x", "pair", "--json", "o"], ["--values", "1", "--", "x", "pair"],
                ["--values", "1", "--", "x", "coll", "--json", "o"], ["--values", "a"]):
        r = subprocess.run(["bash", SWEEP, *bad], capture_output=True, text=True, timeout=60)
        check(f"bad args {bad}", r.returncode == 2, f"{r.returncode} {r.stderr}")
    r = subprocess.run(["bash", SWEEP, "--values", "1,32", "--dry-run", "--", "srun", "-n", "8", "ob", "run", "--set",
                        "cdmc=1,8", "--json", "o.json"], capture_output=True, text=True, timeout=60)
    check("srun export and --set", "--export=ALL,CUDA_DEVICE_MAX_CONNECTIONS=32" in r.stderr
          and "--set cdmc=32" in r.stderr and "cdmc=1,8" not in r.stderr, r.stderr)


def test_real_sim_sweep():
    ob = os.environ.get("OB_BIN")
    if not ob or not os.access(ob, os.X_OK):
        return
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "sim.json")
        cmd = ["bash", SWEEP, "--values", "1,8", "--", ob, "pair", "--backend", "sim", "--gemm", "1024x1024x1024",
               "--coll", "all_gather", "--bytes", "8MiB", "--ranks", "8", "-q", "--json", out]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        check("real sim sweep", r.returncode == 0, r.stderr[-2000:])
        if r.returncode == 0:
            c = subprocess.run([ob, "compare", out, out], capture_output=True, text=True, timeout=60)
            check("merged file passes the strict reader", c.returncode == 0, c.stdout + c.stderr)


def main():
    for t in (test_merge_rules, test_sweep_with_fake_launcher, test_real_sim_sweep):
        try:
            t()
        except Exception as e:
            check(t.__name__, False, f"raised {type(e).__name__}: {e}")
    return CHECKS.report()


if __name__ == "__main__":
    sys.exit(main())
