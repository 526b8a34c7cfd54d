"""compare on inputs it cannot judge (README: compare): a document without cases, or two
documents without a case in common, exit 2 saying nothing was compared, never "no regression";
two step documents whose runs differ in a flag are matched on the params that vary; a simulator
model change is a warning on stdout and stderr, and on the report's trend."""
import os
import unittest

from e2e_common import TempDirTest, load, run

LAYER = ["run", "--backend", "sim", "-q", "--set", "sm_margin=0,16"]
STEP = ["step", "--backend", "sim", "-q", "--model", "gpt3_175b", "--layers", "8", "--gpus", "8",
        "--pp", "2", "--gbs", "8"]


class CompareInputs(TempDirTest):
    def layer(self, name, *extra):
        p = self.path(name)
        self.assertRuns(LAYER + list(extra) + ["--json", p])
        return p

    def edited(self, src, name, edit):
        doc = load(src)
        edit(doc)
        return self.write_json(name, doc)

    def test_a_document_without_cases_compares_nothing(self):
        a = self.layer("a.json", "--set", "cdmc=1")
        empty = self.edited(a, "empty.json", lambda d: d.update(cases=[]))
        for base, new in ((a, empty), (empty, a), (empty, empty)):
            rc, out, err = run(["compare", base, new])
            self.assertEqual(rc, 2, out + err)
            self.assertIn("NOTHING COMPARED", out)
            self.assertNotIn("no regression", out)
            self.assertIn("nothing was compared", err)
            self.assertIn(os.path.basename(base), err)

    def test_no_case_in_common_compares_nothing(self):
        a = self.layer("a.json", "--set", "cdmc=1", "--set", "method=preset")
        b = self.layer("b.json", "--set", "cdmc=8", "--set", "method=preset")
        rc, out, err = run(["compare", a, b])
        self.assertEqual(rc, 2, out + err)
        self.assertIn("have no case in common", err)
        self.assertNotIn("no regression", out)
        # The same document still compares as before.
        out, _ = self.assertRuns(["compare", a, a])
        self.assertIn("no regression", out)

    def test_step_cases_are_matched_on_the_params_that_vary(self):
        base, new = self.path("tp2.json"), self.path("tp4.json")
        self.assertRuns(STEP + ["--tp", "2", "--cdmc", "1,8", "--json", base])
        self.assertRuns(STEP + ["--tp", "4", "--cdmc", "1,8", "--json", new])
        rc, out, err = run(["compare", base, new])
        self.assertIn(rc, (0, 1), out + err)
        summary = out.splitlines()[-2]
        self.assertNotIn("MISSING", summary)
        self.assertNotIn("NEW", summary)
        self.assertIn("tp: BASE 2, NEW 4", out)
        rows = [line.split()[0] for line in out.splitlines() if line.startswith("cdmc=")]
        self.assertEqual(rows, ["cdmc=1", "cdmc=8"])
        # One case each: the one is compared with the other.
        one_base, one_new = self.path("one2.json"), self.path("one4.json")
        self.assertRuns(STEP + ["--tp", "2", "--json", one_base])
        self.assertRuns(STEP + ["--tp", "4", "--json", one_new])
        rc, out, err = run(["compare", one_base, one_new])
        self.assertIn(rc, (0, 1), out + err)
        self.assertNotIn("NOTHING COMPARED", out)

    def test_a_step_document_without_cases_compares_nothing(self):
        s = self.path("s.json")
        self.assertRuns(STEP + ["--tp", "2", "--json", s])
        empty = self.edited(s, "empty.json", lambda d: d.update(cases=[]))
        rc, out, err = run(["compare", s, empty])
        self.assertEqual(rc, 2, out + err)
        self.assertIn("NOTHING COMPARED", out)

    def test_another_simulator_model_is_a_warning(self):
        a = self.layer("a.json", "--set", "cdmc=1")
        self.assertTrue(load(a)["env"]["sim_model"].startswith("sim-v"))

        def older(d):
            d["env"]["sim_model"] = "sim-v2"
        old = self.edited(a, "old.json", older)
        out, err = self.assertRuns(["compare", old, a])
        msg = "simulator model differs: BASE sim-v2, NEW " + load(a)["env"]["sim_model"]
        self.assertIn("warning: " + msg, out)
        self.assertIn(msg, err)
        out, err = self.assertRuns(["compare", a, a])
        self.assertNotIn("simulator model", out + err)

    def test_the_trend_warns_about_another_simulator_model(self):
        a = self.layer("a.json", "--set", "cdmc=1")
        old = self.edited(a, "old.json", lambda d: d["env"].update(sim_model="sim-v2"))
        rep = self.path("rep")
        _, err = self.assertRuns(["report", a, old, "--out", rep],
                                 env={"OVERLAP_BENCH_PYTHON": self.path("no-python")})
        self.assertIn("simulator model differs", err)
        with open(os.path.join(rep, "report.md"), encoding="utf-8") as f:
            md = f.read()
        self.assertIn("simulator model differs: old is sim-v2", md)
        self.assertIn("(model sim-v2 → ", md)


if __name__ == "__main__":
    unittest.main()
