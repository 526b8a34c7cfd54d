#!/usr/bin/env python3
"""Merges the result documents of a CDMC sweep (one run per CUDA_DEVICE_MAX_CONNECTIONS value,
see scripts/sweep_cdmc.sh) into one overlap-bench/result/v1 document.

  merge_cdmc.py --out merged.json part.cdmc1.json part.cdmc8.json ...
  merge_cdmc.py --out merged.json 1=a.json 8=b.json          (explicit values)

Each part's CDMC comes from VALUE=FILE, else env.cdmc, else a ".cdmcN." in its file name. Cases are
concatenated in part order and tagged params.cdmc; a case that already says another cdmc is an
error. The parts must come from comparable runs: same schema, tool, backend, GPU, ranks and library
versions (env fields that legitimately differ, the CDMC itself and live clocks, are ignored).
The output is written through a temporary file and a rename. Exit 0 ok, 2 bad input.
"""
import argparse
import copy
import json
import os
import re
import sys
import tempfile

SCHEMA = "overlap-bench/result/v1"
# env fields that differ between CDMC runs by design or by the minute.
IGNORED_ENV = {"cdmc", "setup_warnings", "hostname"}
IGNORED_NESTED = {("variables", "CUDA_DEVICE_MAX_CONNECTIONS"), ("cuda_variables", "CUDA_DEVICE_MAX_CONNECTIONS"),
                  ("device", "sm_clock_mhz")}


class MergeError(Exception):
    pass


def comparable_env(env):
    env = copy.deepcopy(env or {})
    for k in IGNORED_ENV:
        env.pop(k, None)
    for outer, inner in IGNORED_NESTED:
        if isinstance(env.get(outer), dict):
            env[outer].pop(inner, None)
    return env


def load_part(spec):
    value = None
    path = spec
    m = re.fullmatch(r"(\d+)=(.+)", spec)
    if m:
        value, path = int(m.group(1)), m.group(2)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise MergeError(f"{path}: cannot read: {e}") from e
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise MergeError(f"{path}: schema: expected {SCHEMA}, got {doc.get('schema') if isinstance(doc, dict) else doc!r}")
    if not isinstance(doc.get("cases"), list):
        raise MergeError(f"{path}: cases: expected an array")
    if value is None:
        env_cdmc = (doc.get("env") or {}).get("cdmc")
        if isinstance(env_cdmc, int):
            value = env_cdmc
    if value is None:
        m = re.search(r"\.cdmc(\d+)\.", os.path.basename(path))
        if m:
            value = int(m.group(1))
    if value is None:
        raise MergeError(f"{path}: cannot tell its CDMC: give it as VALUE={path}")
    if not 1 <= value <= 32:
        raise MergeError(f"{path}: CDMC {value} is out of range 1..32")
    return path, value, doc


def merge(parts):
    """parts: [(path, cdmc, doc)] -> merged doc."""
    if not parts:
        raise MergeError("no input files")
    first_path, _, first = parts[0]
    seen_values = {}
    merged = {"schema": SCHEMA, "simulated": bool(first.get("simulated", False)), "tool": first.get("tool", {}),
              "env": copy.deepcopy(first.get("env", {})), "config": first.get("config", {}), "cases": []}
    ids = set()
    for path, value, doc in parts:
        if value in seen_values:
            raise MergeError(f"{path}: CDMC {value} already came from {seen_values[value]}")
        seen_values[value] = path
        if bool(doc.get("simulated", False)) != merged["simulated"]:
            raise MergeError(f"{path}: simulated differs from {first_path}: never mix simulated and measured results")
        if doc.get("tool") != first.get("tool"):
            raise MergeError(f"{path}: tool (version, git sha) differs from {first_path}")
        a, b = comparable_env(first.get("env")), comparable_env(doc.get("env"))
        if a != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise MergeError(f"{path}: env differs from {first_path} in {', '.join(keys)}: not the same setup")
        for c in doc["cases"]:
            c = copy.deepcopy(c)
            params = c.setdefault("params", {})
            if "cdmc" in params and params["cdmc"] != value:
                raise MergeError(f"{path}: case {c.get('id')}: params.cdmc is {params['cdmc']} but the run had CDMC {value}")
            params["cdmc"] = value
            cid = str(c.get("id", ""))
            if cid in ids:
                cid = f"{cid}-cdmc{value}"
                if cid in ids:
                    raise MergeError(f"{path}: duplicate case id {c.get('id')}")
                c["id"] = cid
            ids.add(cid)
            merged["cases"].append(c)
    env = merged["env"]
    env["cdmc"] = sorted(seen_values)
    env["cdmc_sweep"] = {str(v): os.path.basename(p) for v, p in sorted(seen_values.items())}
    for outer in ("variables", "cuda_variables"):
        if isinstance(env.get(outer), dict) and "CUDA_DEVICE_MAX_CONNECTIONS" in env[outer]:
            env[outer]["CUDA_DEVICE_MAX_CONNECTIONS"] = "swept: " + ",".join(str(v) for v in sorted(seen_values))
    return merged


def write_atomic(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None):
    ap = argparse.ArgumentParser(description="Merge per-CDMC result documents into one.")
    ap.add_argument("--out", required=True)
    ap.add_argument("parts", nargs="+", help="FILE or VALUE=FILE")
    args = ap.parse_args(argv)
    try:
        merged = merge([load_part(p) for p in args.parts])
    except MergeError as e:
        print(f"merge_cdmc: error: {e}", file=sys.stderr)
        return 2
    write_atomic(args.out, json.dumps(merged, indent=2) + "\n")
    print(f"merge_cdmc: {len(merged['cases'])} cases from CDMC {merged['env']['cdmc']} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
