"""Journaled sweeps, stopping and resuming, injected hangs (README: journaled sweeps, fault
injection): a sweep interrupted by a signal keeps its finished cases in the JSON, --resume
measures only the rest, a killed run loses nothing it finished, an injected hang exits 4 naming
the rank and the op, and an unwritable output is refused before the first case."""
import os
import signal
import subprocess
import time
import unittest

from e2e_common import BIN, SRC, TempDirTest, load, run, validate

# 1,000 layer cases: long enough to interrupt, short enough to finish in about a second.
RUN = ["run", "--backend", "sim", "-q", "--set", "cdmc=" + ",".join(str(i) for i in range(1, 26)),
       "--set", "method=preset", "--set", "order=comm_first,gemm_first", "--set",
       "sm_margin=" + ",".join(str(i) for i in range(10)), "--set", "priority=comm_high,equal"]
CASES = 1000


def journal_lines(path):
    try:
        with open(path) as f:
            return sum(1 for line in f if line.endswith("\n"))
    except FileNotFoundError:
        return 0


class Journal(TempDirTest):
    def start(self, args, env=None):
        full_env = dict(os.environ, OVERLAP_BENCH_CONFIGS=os.path.join(SRC, "configs"))
        full_env.pop("CUDA_DEVICE_MAX_CONNECTIONS", None)
        full_env.update(env or {})
        return subprocess.Popen([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=full_env)

    def interrupt(self, sig, out):
        """Starts the sweep, signals it once the journal holds a few cases; returns (rc, err)."""
        p = self.start(RUN + ["--json", out])
        deadline = time.time() + 60
        while journal_lines(out + ".journal") < 6 and p.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        p.send_signal(sig)
        _, err = p.communicate(timeout=120)
        return p.returncode, err

    def reference(self):
        ref = self.path("ref.json")
        self.assertRuns(RUN + ["--json", ref])
        return ref

    def test_sigint_keeps_the_finished_cases_and_resume_completes(self):
        out = self.path("r.json")
        rc, err = self.interrupt(signal.SIGINT, out)
        self.assertEqual(rc, 130, err)
        doc = load(out)
        validate(doc, "result_v1.schema.json")
        done = len(doc["cases"])
        self.assertGreaterEqual(done, 5)
        self.assertLess(done, CASES, "the signal came too late to test anything")
        self.assertEqual(journal_lines(out + ".journal"), done + 1)  # header + one line per case
        self.assertIn("stopped by SIGINT after %d of %d cases" % (done, CASES), err)
        # Resuming measures only the rest and ends with what an uninterrupted run writes.
        _, err = self.assertRuns(RUN + ["--json", out, "--resume"])
        self.assertIn("%d of %d cases already finished" % (done, CASES), err)
        with open(out, "rb") as a, open(self.reference(), "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assertFalse(os.path.exists(out + ".journal"), "a finished sweep drops its journal")

    def test_sigterm_exits_143_with_the_finished_cases(self):
        out = self.path("t.json")
        rc, err = self.interrupt(signal.SIGTERM, out)
        self.assertEqual(rc, 143, err)
        ids = [c["id"] for c in load(out)["cases"]]
        ref_ids = [c["id"] for c in load(self.reference())["cases"]]
        self.assertEqual(ids, ref_ids[:len(ids)], "the finished cases, in sweep order")

    def test_a_killed_run_loses_nothing_it_finished(self):
        out = self.path("k.json")
        rc, _, _ = run(RUN + ["--json", out], env={"OVERLAP_BENCH_INJECT": "die:rank=0:case=7"})
        self.assertEqual(rc, -signal.SIGKILL)
        self.assertFalse(os.path.exists(out))
        self.assertEqual(journal_lines(out + ".journal"), 8)
        # Without --resume the journal is not thrown away.
        rc, _, err = run(RUN + ["--json", out])
        self.assertEqual(rc, 2, err)
        self.assertIn("pass --resume to continue it", err)
        _, err = self.assertRuns(RUN + ["--json", out, "--resume"])
        self.assertIn("7 of %d cases already finished" % CASES, err)
        self.assertEqual(load(out)["cases"], load(self.reference())["cases"])

    def test_the_journal_keeps_timelines_only_for_the_best_and_worst_so_far(self):
        out = self.path("t.json")
        run(RUN + ["--json", out], env={"OVERLAP_BENCH_INJECT": "die:rank=0:case=500"})
        with open(out + ".journal") as f:
            lines = f.readlines()[1:]  # after the fingerprint line
        self.assertEqual(len(lines), 500)
        with_timeline = sum(1 for line in lines if '"timeline"' in line)
        # Each kept timeline was a new best or worst when its case finished: a handful, not 500.
        self.assertGreaterEqual(with_timeline, 2)
        self.assertLess(with_timeline, 50, "the journal holds a timeline for most cases")
        _, err = self.assertRuns(RUN + ["--json", out, "--resume"])
        self.assertEqual(load(out)["cases"], load(self.reference())["cases"])

    def test_max_cases_refuses_a_runaway_sweep_before_the_first_case(self):
        out = self.path("m.json")
        rc, _, err = run(RUN + ["--json", out, "--max-cases", str(CASES - 1)])
        self.assertEqual(rc, 2, err)
        self.assertIn("--max-cases: the sweep has %d layer cases, over the limit of %d" % (CASES, CASES - 1), err)
        self.assertFalse(os.path.exists(out))
        self.assertFalse(os.path.exists(out + ".journal"))
        args = [a for a in RUN if a != "-q"]
        rc, _, err = run(args + ["--json", out, "--max-cases", str(CASES)])
        self.assertEqual(rc, 0, err)
        self.assertIn("overlap-bench: %d layer cases" % CASES, err)
        self.assertRegex(err, r"\[\d+/%d\] .* \(about [\d.]+ s left; journal heading for " % CASES)
        rc, _, err = run(RUN + ["--json", out])  # -q: neither the preflight line nor progress
        self.assertNotIn("layer cases", err)
        self.assertNotIn("[", err)

    def test_a_cut_short_journal_line_is_dropped(self):
        out = self.path("c.json")
        run(RUN + ["--json", out], env={"OVERLAP_BENCH_INJECT": "die:rank=0:case=3"})
        with open(out + ".journal", "a") as f:
            f.write('{"id": "cdmc=1,meth')
        _, err = self.assertRuns(RUN + ["--json", out, "--resume"])
        self.assertIn("3 of %d cases already finished" % CASES, err)
        self.assertEqual(len(load(out)["cases"]), CASES)

    def test_a_journal_resumes_only_its_own_sweep(self):
        out = self.path("o.json")
        run(RUN + ["--json", out], env={"OVERLAP_BENCH_INJECT": "die:rank=0:case=2"})
        rc, _, err = run(RUN + ["--set", "comm_ctas=8", "--json", out, "--resume"])
        self.assertEqual(rc, 2, err)
        self.assertIn(out + ".journal: belongs to another sweep", err)
        rc, _, err = run(RUN + ["--iters", "3", "--json", out, "--resume"])
        self.assertEqual(rc, 2, err)
        self.assertTrue(os.path.exists(out + ".journal"), "a refused resume keeps the journal")

    def test_resume_without_a_journal_starts_afresh(self):
        out = self.path("n.json")
        _, err = self.assertRuns(["pair", "--backend", "sim", "--gemm", "1024x1024x1024", "--bytes",
                                  "1MiB", "--json", out, "--resume", "-q"])
        self.assertIn("starting afresh", err)
        self.assertEqual(len(load(out)["cases"]), 1)
        self.assertEqual(sorted(os.listdir(self.tmp)), ["n.json"])

    def test_unwritable_outputs_are_refused_before_the_first_case(self):
        for flag in ("--json", "--csv", "--trace"):
            start = time.time()
            rc, _, err = run(RUN + [flag, "/proc/x.out"])
            self.assertEqual(rc, 2, err)
            self.assertIn(flag + " /proc/x.out: cannot write there", err)
            self.assertNotIn("[1/", err, "no case ran")
            self.assertLess(time.time() - start, 10)
        rc, _, err = run(RUN + ["--json", self.tmp])
        self.assertEqual(rc, 2, err)
        self.assertIn("is a folder", err)

    def test_injected_hang_exits_4_naming_rank_and_op(self):
        out = self.path("h.json")
        rc, _, err = run(RUN + ["--json", out], env={"OVERLAP_BENCH_INJECT": "skip_collective:rank=1:case=2"})
        self.assertEqual(rc, 4, err)
        self.assertIn("rank 1 never joined it", err)
        self.assertIn("reduce_scatter 'proj_fprop.chunk0.rs'", err)
        self.assertIn("case 2 (", err)
        self.assertFalse(os.path.exists(out))
        self.assertIn("2 finished case(s) are kept in " + out + ".journal", err)

    def test_inject_flag_and_coll(self):
        rc, _, err = run(["coll", "--backend", "sim", "--op", "all_reduce", "--min", "1MiB", "--max",
                          "4MiB", "--inject", "skip_collective:rank=3:case=1"])
        self.assertEqual(rc, 4, err)
        self.assertIn("size 2097152 B", err)
        self.assertIn("rank 3 never joined it", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
