"""The MPI path for real: mpirun -np 2 runs pair on the sim backend; rank 0 alone writes, and the
values equal a single-rank run."""
import os
import shutil
import subprocess
import unittest

from e2e_common import BIN, HAVE_MPI, SRC, TempDirTest, load

PAIR = ["pair", "--backend", "sim", "--gemm", "8192x8192x8192", "--coll", "reduce_scatter",
        "--bytes", "128MiB", "--ranks", "8", "--cdmc", "1,8"]


@unittest.skipUnless(HAVE_MPI and shutil.which("mpirun"), "built without MPI")
class Mpi(TempDirTest):
    def mpirun(self, n, args):
        env = dict(os.environ, OVERLAP_BENCH_CONFIGS=os.path.join(SRC, "configs"),
                   OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   OMPI_MCA_btl="self,vader", OMPI_MCA_btl_vader_single_copy_mechanism="none",
                   OMPI_MCA_rmaps_base_oversubscribe="1")
        cmd = ["mpirun", "-np", str(n), "--oversubscribe", "--allow-run-as-root", BIN] + args
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)

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


if __name__ == "__main__":
    unittest.main(verbosity=2)
