"""`report` grows linearly with the cases (README: the report): naming each row of a 10,000-case
report once took 23 s because every row recomputed the params' impacts over every case. Four
times the cases must cost well under sixteen times the time."""
import time
import unittest

from e2e_common import TempDirTest, load, run

NO_PICTURES = {"OVERLAP_BENCH_PYTHON": "/nonexistent/python3"}


def sweep(margins):
    return ["run", "--backend", "sim", "-q", "--set", "cdmc=" + ",".join(str(i) for i in range(1, 26)),
            "--set", "method=preset", "--set", "order=comm_first,gemm_first",
            "--set", "sm_margin=" + ",".join(str(i) for i in range(margins)),
            "--set", "priority=comm_high,equal", "--set", "comm_ctas=0,8,16,24"]


class ReportScale(TempDirTest):
    def report_seconds(self, doc, name):
        best = None
        for _ in range(2):  # the faster of two: a busy machine slows one run, not both
            start = time.monotonic()
            self.assertRuns(["report", doc, "--out", self.path(name)], env=NO_PICTURES)
            took = time.monotonic() - start
            best = took if best is None else min(best, took)
        return best

    def test_four_times_the_cases_is_not_sixteen_times_the_time(self):
        small, large = self.path("small.json"), self.path("large.json")
        self.assertRuns(sweep(5) + ["--json", small])   # 2,000 cases
        self.assertRuns(sweep(20) + ["--json", large])  # 8,000 cases
        self.assertEqual(len(load(large)["cases"]), 4 * len(load(small)["cases"]))
        t_small = self.report_seconds(small, "rs")
        t_large = self.report_seconds(large, "rl")
        # Linear: about 4x (plus fixed costs, so less); quadratic: about 16x.
        self.assertLess(t_large, 9 * max(t_small, 0.05), f"{t_small:.2f} s -> {t_large:.2f} s")


if __name__ == "__main__":
    unittest.main()
