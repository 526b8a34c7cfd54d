#!/usr/bin/env python3
"""Checks a scripts/device_validate.sh archive the way its readers will meet it: one results
folder inside, the files each finished step writes, and `overlap-bench calibrate --check`,
`report` and `--expect` accepting them. Exit 0 when all hold, 1 otherwise (each problem printed).

    scripts/check_gpu_results.py --archive gpu_results.tar.gz --bin build/overlap-bench

Standard library only; runs in the dry run on machines without a GPU.
"""
import argparse
import glob
import os
import subprocess
import sys
import tarfile
import tempfile

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What each step leaves in the folder when its status is ok (or fixture, in a dry run).
OUTPUTS = {
    "env": ["env.json"],
    "bench": ["bench.json"],
    "torch": ["torch.json"],
    "pair_sim": ["pair_sim.json"],
    "pair_loopback": ["pair_loopback.json"],
    "layer_sim": ["layer_sim.json"],
    "layer_loopback": ["layer_loopback.json"],
    "coll_nccl1": ["coll_nccl1_*.json"],
    "step_sim": ["step_sim.json"],
    "step_cuda": ["step_cuda.json"],
    "pair_graphs": ["pair_graphs_loopback.json"],
    "calibrate": ["calibrate_check.txt"],
}
LAYER = ["run", "--config", os.path.join(SRC, "configs", "scenarios", "default_layer.json"), "--set", "cdmc=1,8",
         "--set", "sm_margin=0,32", "--set", "te_launch_ordering=off", "--backend", "sim", "-q",
         "--timeout", "60"]


def read_steps(folder):
    steps = {}
    with open(os.path.join(folder, "steps.tsv"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            steps[parts[0]] = parts[1] if len(parts) > 1 else ""
    return steps


def unpack(archive, into):
    with tarfile.open(archive, "r:gz") as t:
        names = t.getnames()
        tops = {n.split("/")[0] for n in names}
        if len(tops) != 1:
            raise ValueError(f"{archive}: expected one results folder inside, found {sorted(tops)}")
        for m in t.getmembers():
            if m.name.startswith("/") or ".." in m.name.split("/"):
                raise ValueError(f"{archive}: unsafe member {m.name}")
        t.extractall(into)
    return os.path.join(into, tops.pop())


def run(binary, args):
    p = subprocess.run([binary] + args, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def check_files(folder, steps, problems):
    for required in ("steps.tsv", "summary.md"):
        if not os.path.exists(os.path.join(folder, required)):
            problems.append(f"{required} missing")
    for step, patterns in OUTPUTS.items():
        if steps.get(step) not in ("ok", "fixture"):
            continue
        for pat in patterns:
            if not glob.glob(os.path.join(folder, pat)):
                problems.append(f"step {step} is {steps[step]} but left no {pat}")


def check_readers(binary, folder, work, problems, gpu):
    code, out = run(binary, ["calibrate", "--check", "--gpu", gpu, folder])
    if code != 0:
        problems.append(f"calibrate --check on the folder exited {code}: {out.strip().splitlines()[-1:]}")
    for doc in ("layer_loopback.json", "step_cuda.json", "layer_sim.json"):
        path = os.path.join(folder, doc)
        if os.path.exists(path):
            code, out = run(binary, ["report", path, "--out", os.path.join(work, "report_" + doc[:-5])])
            if code != 0:
                problems.append(f"report {doc} exited {code}: {out.strip().splitlines()[-1:]}")
    for baseline in ("layer_sim.json", "layer_loopback.json"):
        path = os.path.join(folder, baseline)
        if os.path.exists(path):
            # 1 means the cases were compared and some moved (a measurement against the model):
            # the file was read. 2 or 3 means it could not be used as a baseline.
            code, out = run(binary, LAYER + ["--set", f"gpu={gpu}", "--expect", path])
            if code not in (0, 1):
                problems.append(f"--expect {baseline} exited {code}: {out.strip().splitlines()[-1:]}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archive", required=True)
    ap.add_argument("--bin", required=True, help="overlap-bench")
    ap.add_argument("--gpu", default="h100_sxm", help="the simulator's GPU file for the measured card")
    args = ap.parse_args(argv)
    problems = []
    with tempfile.TemporaryDirectory() as work:
        try:
            folder = unpack(args.archive, work)
            steps = read_steps(folder)
        except (OSError, ValueError, tarfile.TarError) as e:
            print(f"check_gpu_results: {e}", file=sys.stderr)
            return 1
        check_files(folder, steps, problems)
        check_readers(args.bin, folder, work, problems, args.gpu)
        name = os.path.basename(folder)
    for p in problems:
        print(f"check_gpu_results: {p}", file=sys.stderr)
    print(f"check_gpu_results: {args.archive}: folder {name}, {len(steps)} steps, "
          f"{'OK' if not problems else str(len(problems)) + ' problem(s)'}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
