"""Golden outputs: refactors must not change what users see.

Each case below runs the real binary on the sim backend (or `resolve`) and compares its JSON and
stdout with a file recorded under tests/data/golden/. Every simulated number must be identical.
Only facts of the machine and build are masked (git sha, hostname, environment variables, the
source path). A change in output that is intended (a model change, a new column) is recorded
again with:

    python3 tests/e2e/test_golden.py --record       (with OB_BIN pointing at the binary)

and the diff of tests/data/golden/ is then part of the change, where a reviewer sees it.
"""
import glob
import json
import os
import sys
import tempfile
import unittest

from e2e_common import SRC, run

GOLDEN = os.path.join(SRC, "tests", "data", "golden")
PAIR = ["pair", "--backend", "sim", "--gemm", "8192x8192x8192", "--coll", "all_gather",
        "--bytes", "64MiB", "--ranks", "8", "--cdmc", "1,8", "--order", "comm_first,gemm_first",
        "--sm-margin", "0,16", "--comm-ctas", "0,8"]


def cases():
    """name -> (args, writes_json). Paths are relative to the source tree (the cwd)."""
    c = {
        "run_default": (["run", "--backend", "sim"], True),
        "run_methods_te": (["run", "--backend", "sim", "--set", "method=preset,te_default,none",
                            "--set", "sm_margin=preset,8", "--set", "cdmc=1,8",
                            "--set", "te_launch_ordering=off", "--set", "comm_ctas=0,24",
                            "--set", "priority=comm_high,equal"], True),
        "run_no_sp_fp8": (["run", "--backend", "sim", "--set", "sequence_parallel=false",
                           "--set", "model=llama3_70b", "--set", "preset=userbuffers_fp8_h100_h8192_tp4_mbs1_seqlen8192",
                           "--set", "cdmc=1", "--set", "passes=fwd"], True),
        "run_layernorm_margin": (["run", "--backend", "sim", "--set", "layernorm_sm_margin=16",
                                  "--set", "cdmc=8", "--set", "method=te_default",
                                  "--set", "tp=8", "--set", "micro_batch=2", "--set", "seq_length=4096",
                                  "--set", "te_launch_ordering=on"], True),
        "run_bridge_llama": (["run", "--backend", "sim", "--config",
                              "tests/data/golden/scenario_bridge_llama.json"], True),
        "run_bridge_gpt3": (["run", "--backend", "sim", "--config",
                             "tests/data/golden/scenario_gpt3_bridge.json"], True),
        "pair_sweep": (PAIR, True),
        "pair_producer": (["pair", "--backend", "sim", "--gemm", "4096x12288x12288", "--coll",
                           "reduce_scatter", "--bytes", "96MiB", "--ranks", "4", "--cdmc", "1,8",
                           "--comm-waits-on-producer", "50", "--priority", "comm_high,compute_high"],
                          True),
        "pair_fp8_ar": (["pair", "--backend", "sim", "--gemm", "512x12288x3072", "--dtype", "fp8",
                         "--coll", "all_reduce", "--bytes", "12MiB", "--ranks", "4"], True),
    }
    for op in ("all_gather", "reduce_scatter", "all_reduce", "all_to_all"):
        c["coll_" + op] = (["coll", "--backend", "sim", "--op", op, "--min", "1KiB", "--max", "1GiB",
                            "--factor", "4", "--ranks", "8"], True)
    c["coll_ctas_4ranks"] = (["coll", "--backend", "sim", "--op", "all_gather", "--bytes", "48MiB",
                              "--ranks", "4", "--ctas", "8"], True)
    for f in sorted(glob.glob(os.path.join(SRC, "tests", "data", "resolve", "*.json"))):
        rel = os.path.relpath(f, SRC)
        c["resolve_" + os.path.splitext(os.path.basename(f))[0]] = (["resolve", "--input", rel], False)
    return c


def mask(doc):
    """Removes what depends on the machine or the build, not on the code's behaviour."""
    if isinstance(doc, dict):
        tool = doc.get("tool")
        if isinstance(tool, dict):
            tool.pop("git_sha", None)
        env = doc.get("env")
        if isinstance(env, dict):
            env.pop("hostname", None)
            env.pop("variables", None)
            env.pop("mpi", None)
    return doc


def normalise(text):
    return text.replace(SRC + os.sep, "").replace(SRC, ".")


def produce(args, writes_json):
    """Runs one case; returns {"rc", "stdout", "json"} with machine facts masked."""
    with tempfile.TemporaryDirectory() as tmp:
        extra = []
        out_json = os.path.join(tmp, "out.json")
        if writes_json:
            extra = ["--json", out_json]
        rc, out, _ = run(args + extra, cwd=SRC)
        doc = None
        if writes_json and os.path.exists(out_json):
            with open(out_json) as f:
                doc = mask(json.loads(normalise(f.read())))
    return {"rc": rc, "stdout": normalise(out), "json": doc}


def golden_path(name):
    return os.path.join(GOLDEN, name + ".golden.json")


def record():
    os.makedirs(GOLDEN, exist_ok=True)
    for name, (args, writes_json) in cases().items():
        got = produce(args, writes_json)
        got["args"] = args
        with open(golden_path(name), "w") as f:
            json.dump(got, f, indent=1, sort_keys=False)
            f.write("\n")
        print(f"recorded {name} (exit {got['rc']})")


def first_difference(want, got, path="$"):
    """The JSON path of the first difference, or None."""
    if type(want) is not type(got):
        return f"{path}: {want!r} != {got!r}"
    if isinstance(want, dict):
        if list(want.keys()) != list(got.keys()):
            return f"{path}: keys {list(want.keys())} != {list(got.keys())}"
        for k in want:
            d = first_difference(want[k], got[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(want, list):
        if len(want) != len(got):
            return f"{path}: {len(want)} items != {len(got)}"
        for i, (a, b) in enumerate(zip(want, got)):
            d = first_difference(a, b, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if want == got else f"{path}: {want!r} != {got!r}"


class Golden(unittest.TestCase):
    pass


def _make_test(name, args, writes_json):
    def test(self):
        with open(golden_path(name)) as f:
            want = json.load(f)
        got = produce(args, writes_json)
        self.assertEqual(want["args"], args, "the golden was recorded for other arguments")
        self.assertEqual(got["rc"], want["rc"], f"{name}: exit code")
        diff = first_difference(want["json"], got["json"], "json")
        self.assertIsNone(diff, f"{name}: {diff}")
        self.assertEqual(want["stdout"], got["stdout"], f"{name}: stdout differs")
    return test


for _name, (_args, _json) in cases().items():
    setattr(Golden, "test_" + _name, _make_test(_name, _args, _json))


if __name__ == "__main__":
    if "--record" in sys.argv:
        record()
    else:
        unittest.main()
