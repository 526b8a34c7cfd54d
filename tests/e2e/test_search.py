"""`step --search` end to end (README: which layout): the document and its counts, the table's
answer, the flags it refuses, the budget, and MPI ranks splitting the candidates."""
import shutil
import subprocess
import unittest

from e2e_common import HAVE_MPI, TempDirTest, load, mpi_command, validate

# GPT-3 175B cut to 8 layers on 16 H100: a few hundred layouts, seconds to search.
SEARCH = ["step", "--backend", "sim", "--search", "--model", "gpt3_175b", "--layers", "8",
          "--gpus", "16", "--gbs", "32", "--cluster", "dgx_h100"]
COUNTED = ["refused", "pruned_oom", "pruned_dominated", "pruned_bound", "skipped_budget",
           "simulated"]


class Search(TempDirTest):
    def test_document_counts_and_answer(self):
        out, err = self.assertRuns(SEARCH + ["--top", "3", "--json", self.path("s.json"),
                                             "--csv", self.path("s.csv")])
        doc = load(self.path("s.json"))
        validate(doc, "step_v1.schema.json")
        n = doc["search"]
        self.assertEqual(n["candidates"], sum(n[k] for k in COUNTED))
        self.assertEqual(n["evaluated"], n["candidates"] - n["refused"])
        self.assertEqual(n["stopped_by"], "bound")
        self.assertGreater(n["simulated"], 0)
        self.assertEqual(len(doc["cases"]), 3)
        times = [c["step_ms"]["median"] for c in doc["cases"]]
        self.assertEqual(times, sorted(times))
        self.assertTrue(all(c["fits"] for c in doc["cases"]))
        best = doc["cases"][0]["id"]
        self.assertIn("best: " + best, out)
        self.assertIn("ahead of the runner-up " + doc["cases"][1]["id"], out)
        self.assertIn("search (SIMULATED): %d layouts" % n["candidates"], out)
        self.assertNotIn("recommendation (SIMULATED)", out)

    def test_refused_flags_exit_2(self):
        for extra, needle in [(["--tp", "4"], "--tp: --search chooses tp"),
                              (["--cdmc", "1,8"], "--cdmc: --search keeps cdmc fixed"),
                              (["--resume", "--json", self.path("r.json")], "--resume"),
                              (["--top", "0"], "--top 0")]:
            _, err = self.assertRuns(SEARCH + extra, code=2)
            self.assertIn(needle, err)
        args = [a for a in SEARCH]
        i = args.index("--gbs")
        del args[i:i + 2]
        _, err = self.assertRuns(args, code=2)
        self.assertIn("needs the global batch", err)

    def test_a_spent_budget_says_so(self):
        self.assertRuns(SEARCH + ["--budget-s", "0.000001", "--json", self.path("b.json"), "-q"])
        n = load(self.path("b.json"))["search"]
        self.assertEqual(n["stopped_by"], "budget")
        self.assertGreater(n["skipped_budget"], 0)
        self.assertEqual(n["candidates"], sum(n[k] for k in COUNTED))


@unittest.skipUnless(HAVE_MPI and shutil.which("mpirun"), "built without MPI")
class SearchMpi(TempDirTest):
    def test_two_ranks_split_the_candidates_and_agree(self):
        cmd, env = mpi_command(2, SEARCH)
        p = subprocess.run(cmd + ["--json", self.path("m.json"), "-q"], capture_output=True,
                           text=True, env=env, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRuns(SEARCH + ["--json", self.path("one.json"), "-q"])
        two, one = load(self.path("m.json")), load(self.path("one.json"))
        self.assertEqual(two["search"]["ranks"], 2)
        self.assertEqual([c["id"] for c in two["cases"]], [c["id"] for c in one["cases"]])
        self.assertEqual(two["cases"][0]["step_ms"], one["cases"][0]["step_ms"])


if __name__ == "__main__":
    unittest.main()
