#!/usr/bin/env python3
"""scripts/device_validate.sh without a GPU: its --quick benchmark filter against the names
bench_cuda really lists, its --plan, the library search of device_libs.sh (CUDA 12 and 13 wheel
layouts), and whole runs against fake binaries that record their arguments: every overlap-bench
call carries --timeout 60, CUDA_DEVICE_MAX_CONNECTIONS from the image is unset, a hung step is
cut at --step-timeout and the run goes on, a killed run leaves an archive of the steps finished,
and --deadline skips the rest. The dry run itself runs in scripts/test.sh (it builds the pack).

Standard library only. Prints 'N passed, M failed' and exits non-zero on any failure.
"""
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.environ.get("OB_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VALIDATE = os.path.join(ROOT, "scripts", "device_validate.sh")
BIN = os.environ.get("OB_BIN", os.path.join(ROOT, "build", "overlap-bench"))
BENCH = os.path.join(os.path.dirname(os.path.abspath(BIN)), "bench_cuda")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from script_checks import Checks  # noqa: E402

CHECKS = Checks()
check = CHECKS.check

# A stand-in for overlap-bench, bench_cuda and ob_cuda_tests: logs argv and the CDMC it saw,
# writes the file --json / --benchmark_out names (from the fixtures), and hangs when told to.
FAKE = r'''#!/usr/bin/env python3
import json, os, shutil, sys, time
me = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps({"bin": me, "args": args,
                        "cdmc": os.environ.get("CUDA_DEVICE_MAX_CONNECTIONS")}) + "\n")
sub = args[0] if args else ""
if os.environ.get("FAKE_HANG") in (sub, me):
    time.sleep(120)
fixtures = os.environ["FAKE_FIXTURES"]
if me == "bench_cuda":
    if "--benchmark_list_tests" in args:
        print("gemm/square8192/bf16/min_time:0.300/manual_time")
        sys.exit(0)
    out = [a.split("=", 1)[1] for a in args if a.startswith("--benchmark_out=")]
    if out:
        shutil.copy(os.path.join(fixtures, "bench.json"), out[0])
    sys.exit(0)
if "--json" in args:
    path = args[args.index("--json") + 1]
    src = os.path.join(fixtures, os.path.basename(path))
    if os.path.exists(src):
        shutil.copy(src, path)
    else:
        with open(path, "w") as f:
            json.dump({"schema": "fake"}, f)
print("fake " + me + " " + sub)
'''


def make_fakes(folder):
    for name in ("overlap-bench", "bench_cuda", "ob_cuda_tests", "libob_cuda_backend.so"):
        p = os.path.join(folder, name)
        with open(p, "w") as f:
            f.write(FAKE)
        os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def fake_env(tmp, **extra):
    env = dict(os.environ)
    env.update({"FAKE_LOG": os.path.join(tmp, "calls.jsonl"),
                "FAKE_FIXTURES": os.path.join(ROOT, "tests", "data", "gpu_results"),
                "PATH": "/usr/bin:/bin"})  # no nvidia-smi, no compute-sanitizer
    env.update(extra)
    return env


def fake_run(tmp, *extra, env_extra=None, timeout=120):
    fakes = os.path.join(tmp, "bin")
    os.makedirs(fakes, exist_ok=True)
    make_fakes(fakes)
    out = os.path.join(tmp, "results", "2026-01-01-fake")
    archive = os.path.join(tmp, "OUT", "gpu_results.tar.gz")
    cmd = ["bash", VALIDATE, "--skip-build", "--build-dir", fakes, "--quick", "--out", out, "--archive", archive,
           *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=fake_env(tmp, **(env_extra or {})))
    return r, out, archive


def calls(tmp):
    path = os.path.join(tmp, "calls.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def steps(out):
    rows = {}
    with open(os.path.join(out, "steps.tsv")) as f:
        for line in f:
            if not line.startswith("#"):
                p = line.rstrip("\n").split("\t")
                rows[p[0]] = p[1:]
    return rows


def test_quick_filter_selects_every_family():
    """The filter against the names bench_cuda --benchmark_list_tests prints (they end in
    /min_time:.../manual_time, which an end-anchored filter never matches)."""
    if not os.path.exists(BENCH):
        print(f"skip: no {BENCH} (built only with the CUDA toolkit and Google Benchmark)")
        return
    flt = subprocess.run(["bash", VALIDATE, "--bench-filter", "--quick"], capture_output=True, text=True).stdout.strip()
    listed = subprocess.run([BENCH, "--benchmark_list_tests"], capture_output=True, text=True, timeout=60)
    names = listed.stdout.split()
    check("bench_cuda lists without a GPU", listed.returncode == 0 and len(names) > 20, listed.stdout + listed.stderr)
    chosen = subprocess.run([BENCH, "--benchmark_list_tests", f"--benchmark_filter={flt}"],
                            capture_output=True, text=True, timeout=60).stdout.split()
    for family in (r"^gemm/square8192/bf16/min_time", r"^gemm/gpt3_qkv/bf16/min_time", r"^gemm/square8192/fp8/",
                   r"^gemm/.*/sm100/", r"^copy_proxy/1GiB/ctas16/", r"^memcpy_d2d/", r"^layernorm/.*margin32/",
                   r"^pair/"):
        check(f"quick filter selects {family}", any(re.search(family, n) for n in chosen), "\n".join(chosen))
    check("quick filter leaves some out", len(chosen) < len(names), f"{len(chosen)} of {len(names)}")
    check("full filter selects all", subprocess.run(["bash", VALIDATE, "--bench-filter"], capture_output=True,
                                                   text=True).stdout.strip() == ".")


def test_plan():
    r = subprocess.run(["bash", VALIDATE, "--plan"], capture_output=True, text=True, timeout=30)
    check("plan exit 0", r.returncode == 0, r.stderr)
    out = r.stdout
    check("plan: pack command", "scripts/device_validate.sh --pack" in out, out)
    cmd = re.search(r"command:\s+(.*)", out)
    check("plan: device command", cmd and "--skip-build" in cmd.group(1) and "--quick" in cmd.group(1)
          and '--archive "$OUT/gpu_results.tar.gz"' in cmd.group(1) and "--deadline" in cmd.group(1), out)
    check("plan: carry", 'carry:     ["build-devpack/pack"]' in out, out)
    t = re.search(r"timeout_s:\s+(\d+)", out)
    check("plan: timeout_s within the 600 s call limit", t and int(t.group(1)) <= 600, out)
    total = re.search(r"total\s+(\d+) s", out)
    check("plan: under 5 minutes", total and int(total.group(1)) < 300 and "under 5 min" in out, out)
    deadline = re.search(r"--deadline (\d+)", out)
    check("plan: deadline + a last step fit the timeout",
          deadline and t and int(deadline.group(1)) + 100 + 30 <= int(t.group(1)), out)
    check("plan: step limit", "each step 90 s" in out and "--timeout 60" in out, out)
    for bad in (["--only", "nope"], ["--step-timeout", "abc"], ["--step-timeout", "900"], ["--frobnicate"],
                ["--out"], ["--deadline", "x"]):
        r = subprocess.run(["bash", VALIDATE, "--plan", *bad], capture_output=True, text=True, timeout=30)
        check(f"bad args {bad} exit 2", r.returncode == 2, f"{r.returncode} {r.stderr}")
    r = subprocess.run(["bash", VALIDATE, "--help"], capture_output=True, text=True, timeout=30)
    check("help", r.returncode == 0 and "--plan" in r.stdout and "--dry-run" in r.stdout, r.stdout[:200])


def test_library_search():
    """CUDA 13 wheels keep every library in nvidia/cu13/lib, CUDA 12 wheels one folder each."""
    with tempfile.TemporaryDirectory() as tmp:
        site = os.path.join(tmp, "site")
        for sub, lib in (("nvidia/cu13/lib", "libnccl.so.2"), ("nvidia/cublas/lib", "libcublasLt.so.12"),
                         ("nvidia/cu13/lib", "libcupti.so.13")):
            os.makedirs(os.path.join(site, sub), exist_ok=True)
            open(os.path.join(site, sub, lib), "w").close()
        script = f'. "{ROOT}/scripts/device_libs.sh"; find_lib_dir "$1"'
        for lib, want in (("libnccl.so.2", "nvidia/cu13/lib"), ("libcublasLt.so.12", "nvidia/cublas/lib"),
                          ("libcupti.so.13", "nvidia/cu13/lib")):
            r = subprocess.run(["bash", "-c", script, "x", lib], capture_output=True, text=True,
                               env={**os.environ, "OB_LIB_ROOTS": site})
            check(f"finds {lib}", r.returncode == 0 and r.stdout.strip() == os.path.join(site, want), r.stdout)
        r = subprocess.run(["bash", "-c", script, "x", "libnothing.so.1"], capture_output=True, text=True,
                           env={**os.environ, "OB_LIB_ROOTS": site})
        check("missing library: exit 1", r.returncode == 1 and r.stdout == "", r.stdout)


def test_fake_run_commands():
    with tempfile.TemporaryDirectory() as tmp:
        r, out, archive = fake_run(tmp, env_extra={"CUDA_DEVICE_MAX_CONNECTIONS": "1"})
        seen = calls(tmp)
        ob = [c for c in seen if c["bin"] == "overlap-bench"]
        check("fake run called overlap-bench", len(ob) >= 8, r.stderr[-2000:])
        measuring = [c for c in ob if c["args"] and c["args"][0] in ("pair", "run", "coll", "step")]
        missing = [c["args"] for c in measuring if "--timeout" not in c["args"]
                   or c["args"][c["args"].index("--timeout") + 1] != "60"]
        check("every sweep call has --timeout 60", measuring and not missing, str(missing))
        check("CDMC from the image is unset", all(c["cdmc"] is None for c in seen), str({c["cdmc"] for c in seen}))
        with open(os.path.join(out, "env.json")) as f:
            env = json.load(f)
        check("env.json records the inherited CDMC", env.get("inherited_cuda_device_max_connections") == "1", env)
        st = steps(out)
        check("loopback steps ran", st.get("pair_loopback", [""])[0] == "ok" and st.get("layer_loopback", [""])[0] == "ok",
              str(st))
        check("layout checked the archive", st.get("layout", [""])[0] == "ok", str(st.get("layout")))
        check("summary beside the archive", os.path.exists(os.path.join(os.path.dirname(archive), "summary.md")))
        with tarfile.open(archive) as t:
            names = t.getnames()
        check("archive holds one folder", {n.split("/")[0] for n in names} == {"2026-01-01-fake"}, str(names[:5]))
        check("archive holds the results", "2026-01-01-fake/pair_loopback.json" in names, str(names))


def test_hung_step_is_cut_and_the_run_goes_on():
    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        r, out, _ = fake_run(tmp, "--step-timeout", "2", "--only", "env,pair_sim,pair_loopback,layer_sim",
                             env_extra={"FAKE_HANG": "pair"})
        st = steps(out)
        check("hung step failed with a timeout", st.get("pair_sim", ["", "", "", "", ""])[4].startswith("timed out"),
              str(st.get("pair_sim")))
        check("the run went on", st.get("layer_sim", [""])[0] == "ok", str(st))
        check("hung steps cut in seconds", time.time() - start < 60, f"{time.time() - start:.0f} s")
        check("exit 1 with a failed step", r.returncode == 1, str(r.returncode))


def test_killed_run_leaves_the_finished_steps():
    with tempfile.TemporaryDirectory() as tmp:
        fakes = os.path.join(tmp, "bin")
        os.makedirs(fakes)
        make_fakes(fakes)
        out = os.path.join(tmp, "results", "r")
        archive = os.path.join(tmp, "OUT", "gpu_results.tar.gz")
        p = subprocess.Popen(["bash", VALIDATE, "--skip-build", "--build-dir", fakes, "--quick", "--out", out,
                              "--archive", archive], env=fake_env(tmp, FAKE_HANG="run"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        # The layer steps hang (FAKE_HANG=run): wait until the pair steps are in the archive.
        while time.time() < deadline:
            if os.path.exists(archive) and "pair_loopback" in open(os.path.join(out, "steps.tsv")).read():
                break
            time.sleep(0.2)
        time.sleep(1)
        os.killpg(p.pid, signal.SIGKILL)  # as the device tool's timeout does
        p.wait()
        with tarfile.open(archive) as t:
            names = t.getnames()
            tsv = t.extractfile("r/steps.tsv").read().decode()
        check("killed run: archive readable", "r/pair_loopback.json" in names, str(names))
        check("killed run: finished steps listed", "pair_loopback\tok" in tsv, tsv)
        check("killed run: summary inside", "r/summary.md" in names, str(names))


def test_deadline_skips_the_rest():
    with tempfile.TemporaryDirectory() as tmp:
        r, out, _ = fake_run(tmp, "--deadline", "1", "--step-timeout", "3", env_extra={"FAKE_HANG": "ob_cuda_tests"})
        st = steps(out)
        check("steps after the deadline are skipped", st.get("step_cuda", [""])[0] == "skipped"
              and "deadline" in st.get("step_cuda", ["", "", "", "", ""])[4], str(st.get("step_cuda")))
        check("calibrate still runs past the deadline", st.get("calibrate", [""])[0] == "ok", str(st.get("calibrate")))


def main():
    return CHECKS.run_all((test_quick_filter_selects_every_family, test_plan, test_library_search, test_fake_run_commands,
              test_hung_step_is_cut_and_the_run_goes_on, test_killed_run_leaves_the_finished_steps,
              test_deadline_skips_the_rest))


if __name__ == "__main__":
    sys.exit(main())
