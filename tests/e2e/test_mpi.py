"""The MPI path for real: mpirun -np 2 runs pair on the sim backend; rank 0 alone writes, and the
values equal a single-rank run. A rank that skips a reduction or dies never leaves the others
waiting past --timeout, and SIGTERM to the ranks writes the finished cases."""
import os
import shutil
import signal
import subprocess
import time
import unittest

from e2e_common import BIN, HAVE_MPI, SRC, TempDirTest, load, mpi_command

PAIR = ["pair", "--backend", "sim", "--gemm", "8192x8192x8192", "--coll", "reduce_scatter",
        "--bytes", "128MiB", "--ranks", "8", "--cdmc", "1,8"]
# Four cases; the reductions of case 2 are where the injected faults strike.
FAULTY = ["pair", "--backend", "sim", "--gemm", "1024x1024x1024", "--coll", "reduce_scatter",
          "--bytes", "8MiB", "--ranks", "8", "--cdmc", "1,8,16,32", "--timeout", "3", "-q"]
# Thousands of cases, to be stopped half-way.
LONG = FAULTY[:-3] + ["--sm-margin", ",".join(str(i) for i in range(100)), "--order", "comm_first,gemm_first",
                      "--comm-ctas", "0,8,16,32", "-q"]
LONG_CASES = 4 * 100 * 2 * 4  # long enough that a signal sent after 5 cases always lands mid-sweep


def line_count(path):
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for _ in f)


@unittest.skipUnless(HAVE_MPI and shutil.which("mpirun"), "built without MPI")
class Mpi(TempDirTest):
    def command(self, n, args, mpirun_args=()):
        return mpi_command(n, args, mpirun_args)

    def mpirun(self, n, args, timeout=300):
        cmd, env = self.command(n, args)
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)

    def timed(self, n, args):
        start = time.time()
        p = self.mpirun(n, args, timeout=120)
        return p, time.time() - start

    def test_two_ranks_match_one(self):
        two = self.mpirun(2, PAIR + ["--json", self.path("np2.json")])
        self.assertEqual(two.returncode, 0, two.stdout + two.stderr)
        one = self.mpirun(1, PAIR + ["--json", self.path("np1.json")])
        self.assertEqual(one.returncode, 0, one.stdout + one.stderr)
        a, b = load(self.path("np1.json")), load(self.path("np2.json"))
        self.assertEqual(b["env"]["ranks"], 2)
        self.assertEqual(a["env"]["ranks"], 1)
        self.assertIn("Open MPI", b["env"]["mpi"])
        self.assertEqual([c["overlapped_ms"] for c in a["cases"]], [c["overlapped_ms"] for c in b["cases"]])
        # One table: rank 0 alone prints and writes.
        self.assertEqual(two.stdout.count("SIMULATED"), one.stdout.count("SIMULATED"))
        self.assertEqual(sorted(os.listdir(self.tmp)), ["np1.json", "np2.json"])

    def test_a_skipped_reduction_times_out_naming_rank_and_call(self):
        out = self.path("s.json")
        p, took = self.timed(3, FAULTY + ["--json", out, "--inject", "skip_collective:rank=1:case=2"])
        self.assertEqual(p.returncode, 4, p.stdout + p.stderr)
        self.assertLess(took, 60)
        self.assertRegex(p.stderr, r"case 2 \(cdmc=16,[^)]*\): rank [02]: no answer within 3 s "
                                   r"\(--timeout\) in MPI_Iallreduce\(max\)")
        self.assertFalse(os.path.exists(out))
        self.assertEqual(line_count(out + ".journal"), 3, "cases 0 and 1 are kept")

    def test_a_killed_rank_ends_the_job(self):
        p, took = self.timed(3, FAULTY + ["--inject", "die:rank=2:case=1"])
        self.assertNotEqual(p.returncode, 0)
        self.assertLess(took, 60)
        # Open MPI aborts the job and says which rank died.
        self.assertIn("rank 2", p.stdout + p.stderr)
        self.assertIn("signal 9", p.stdout + p.stderr)

    def test_survivors_of_a_killed_rank_time_out_on_their_own(self):
        # Told not to abort the job, mpirun leaves the survivors to their own --timeout. (This
        # mpirun then waits for ever itself once they are gone, so the test stops it.)
        cmd, env = self.command(3, FAULTY + ["--inject", "die:rank=2:case=1"],
                                ["--mca", "orte_abort_on_non_zero_status", "0"])
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=20)
            err = p.stderr
            self.assertNotEqual(p.returncode, 0)
        except subprocess.TimeoutExpired as e:
            err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        for rank in (0, 1):
            self.assertRegex(err, r"case 1 \([^)]*\): rank %d: no answer within 3 s" % rank)

    def test_sigterm_to_the_ranks_writes_the_finished_cases(self):
        out = self.path("t.json")
        cmd, env = self.command(2, LONG + ["--json", out])
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.time() + 60
        while time.time() < deadline and p.poll() is None:
            if line_count(out + ".journal") > 5:
                break
            time.sleep(0.01)
        ranks = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        self.assertEqual(len(ranks), 2)
        for pid in ranks:
            os.kill(int(pid), signal.SIGTERM)
        _, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 143, err)
        done = len(load(out)["cases"])
        self.assertGreater(done, 4)
        self.assertLess(done, LONG_CASES)
        self.assertIn("stopped by SIGTERM after %d of %d cases" % (done, LONG_CASES), err)

    def test_an_unwritable_json_is_refused_before_any_case(self):
        p, took = self.timed(2, FAULTY + ["--json", "/proc/x.json"])
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--json /proc/x.json: cannot write there", p.stderr)
        self.assertLess(took, 30)


if __name__ == "__main__":
    unittest.main(verbosity=2)
