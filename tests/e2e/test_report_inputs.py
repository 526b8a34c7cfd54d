"""report on inputs that answer less than they seem to (README: the report): a document without
cases repeats no recommendation stored in it, and a --history folder that does not exist exits 2
naming it instead of leaving the trend silently short."""
import os
import unittest

from e2e_common import TempDirTest, load, run

LAYER = ["run", "--backend", "sim", "-q", "--set", "cdmc=1,8", "--set", "sm_margin=0,16"]
STEP = ["step", "--backend", "sim", "-q", "--model", "gpt3_175b", "--layers", "8", "--gpus", "8",
        "--tp", "2", "--pp", "2", "--gbs", "8", "--cdmc", "1,8"]
NO_PICTURES = {"OVERLAP_BENCH_PYTHON": "/nonexistent/python3"}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class ReportInputs(TempDirTest):
    def test_a_document_without_cases_repeats_no_recommendation(self):
        r = self.path("r.json")
        self.assertRuns(LAYER + ["--json", r])
        doc = load(r)
        best = doc["recommendation"]["best_case"]
        doc["cases"] = []
        empty = self.write_json("empty.json", doc)
        rep = self.path("rep")
        self.assertRuns(["report", empty, "--out", rep], env=NO_PICTURES)
        md = read(os.path.join(rep, "report.md"))
        self.assertIn("holds no cases: there is nothing to recommend", md)
        self.assertNotIn("sm_margin=16", md)
        self.assertNotIn(best, md)
        s = self.path("s.json")
        self.assertRuns(STEP + ["--json", s])
        doc = load(s)
        doc["cases"] = []
        empty = self.write_json("step_empty.json", doc)
        self.assertRuns(["report", empty, "--out", self.path("srep")], env=NO_PICTURES)
        md = read(os.path.join(self.path("srep"), "report.md"))
        self.assertIn("holds no cases: there is nothing to recommend", md)

    def test_a_missing_history_folder_is_an_error(self):
        r = self.path("r.json")
        self.assertRuns(LAYER + ["--json", r])
        missing = self.path("no-such-history")
        for extra in ([], ["--trend"]):
            rc, _, err = run(["report", r, "--out", self.path("rep"), "--history", missing] + extra)
            self.assertEqual(rc, 2, err)
            self.assertIn("--history " + missing + ": no such folder", err)
        self.assertFalse(os.path.exists(self.path("rep")))


if __name__ == "__main__":
    unittest.main()
