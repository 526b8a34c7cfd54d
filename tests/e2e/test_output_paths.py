"""Every output path is checked before the first case (README: output paths are checked before
the first case): two outputs naming one file, an output naming an input, an unwritable path or a
folder exit 2 naming the flags and the path, write nothing and leave no journal; every output
flag a subcommand takes is written or refused up front (coll --csv writes its rows; coll --trace
and --csv on a step scenario are refused)."""
import csv
import os
import shutil
import unittest

from e2e_common import SRC, TempDirTest, load, run

RUN = ["run", "--backend", "sim", "-q", "--set", "cdmc=1,8"]
PAIR = ["pair", "--backend", "sim", "-q", "--gemm", "1024x1024x1024", "--bytes", "8MiB",
        "--cdmc", "1,8"]
COLL = ["coll", "--backend", "sim", "-q", "--min", "1MiB", "--max", "4MiB"]
STEP = ["step", "--backend", "sim", "-q", "--model", "gpt3_175b", "--layers", "8", "--gpus", "8",
        "--tp", "2", "--pp", "2", "--gbs", "8"]


class OutputPaths(TempDirTest):
    def refused(self, args, *words):
        """Runs `args` expecting exit 2 before any case: nothing on stdout, no file in the folder
        but the ones that were there."""
        before = sorted(os.listdir(self.tmp))
        rc, out, err = run(args, cwd=self.tmp)
        self.assertEqual(rc, 2, f"{args}\nstdout:\n{out}\nstderr:\n{err}")
        for w in words:
            self.assertIn(w, err)
        self.assertNotIn("[1/", err, "refused after a case had run")
        self.assertEqual(sorted(os.listdir(self.tmp)), before, "a refused run wrote a file")
        return err

    def test_two_outputs_naming_one_file(self):
        for cmd in (RUN, PAIR, STEP):
            self.refused(cmd + ["--json", "F", "--gbench-json", "F"], "--gbench-json F", "--json F")
            self.refused(cmd + ["--trace", "F", "--json", "F"], "--trace F", "--json F")
            self.refused(cmd + ["--json", "F", "--gbench-json", "./F"], "--gbench-json", "--json F")
        for cmd in (RUN, PAIR):
            self.refused(cmd + ["--json", "F", "--csv", "F"], "--csv F", "--json F")
            self.refused(cmd + ["--csv", "F", "--gbench-json", "F"], "--gbench-json F", "--csv F")
            self.refused(cmd + ["--json", "F", "--trace", "F.journal"], "journal")
        self.refused(COLL + ["--json", "F", "--csv", "F"], "--csv F", "--json F")

    def test_an_output_naming_an_input(self):
        scenario = self.path("layer.json")
        shutil.copy(os.path.join(SRC, "configs", "scenarios", "default_layer.json"), scenario)
        with open(scenario, "rb") as f:
            original = f.read()
        self.refused(["run", "--backend", "sim", "-q", "--config", "layer.json", "--json",
                      "layer.json"], "--json layer.json", "--config layer.json")
        self.refused(["run", "--backend", "sim", "-q", "--config", "layer.json", "--gbench-json",
                      "layer.json"], "--gbench-json", "--config")
        with open(scenario, "rb") as f:
            self.assertEqual(f.read(), original)
        base = self.path("base.json")
        self.assertRuns(RUN + ["--json", base])
        self.refused(RUN + ["--expect", "base.json", "--json", "base.json"], "--expect base.json")
        self.refused(RUN + ["--expect", "base.json", "--csv", "base.json"], "--expect base.json")
        step_base = self.path("step.json")
        self.assertRuns(STEP + ["--json", step_base])
        self.refused(STEP + ["--expect", "step.json", "--gbench-json", "step.json"], "--expect")
        model = self.path("model.json")
        shutil.copy(os.path.join(SRC, "configs", "models", "gpt3_175b.json"), model)
        self.refused(["step", "--backend", "sim", "-q", "--model", "model.json", "--layers", "8",
                      "--gpus", "8", "--tp", "2", "--pp", "2", "--gbs", "8", "--json",
                      "model.json"], "--model model.json")

    def test_unwritable_paths_and_folders_before_the_first_case(self):
        for cmd in (RUN, PAIR, STEP):
            self.refused(cmd + ["--gbench-json", "/proc/x.json"], "--gbench-json /proc/x.json")
            self.refused(cmd + ["--json", "newdir/"], "--json newdir/", "names a folder")
            self.refused(cmd + ["--json", "F", "--gbench-json", "/proc/x.json"], "--gbench-json")
            self.assertFalse(os.path.exists(self.path("F.journal")))
        os.mkdir(self.path("dir"))
        self.refused(RUN + ["--json", "dir"], "--json dir", "is a folder")
        self.refused(COLL + ["--csv", "/proc/x.csv"], "--csv /proc/x.csv")
        for cmd in (RUN, PAIR, STEP):  # an empty path would write nothing, silently
            self.refused(cmd + ["--gbench-json", ""], "--gbench-json: expected a value")
        # The run after a refused one is not blocked by a journal.
        self.assertRuns(RUN + ["--json", self.path("F")])

    def test_report_checks_gbench_json_first(self):
        r = self.path("r.json")
        self.assertRuns(RUN + ["--json", r])
        rep = self.path("rep")
        rc, _, err = run(["report", r, "--out", rep, "--gbench-json", "/proc/x.json"])
        self.assertEqual(rc, 2, err)
        self.assertIn("--gbench-json /proc/x.json", err)
        self.assertFalse(os.path.exists(rep), "the report was written before the check")
        rc, _, err = run(["report", r, "--out", rep, "--gbench-json", r])
        self.assertEqual(rc, 2, err)
        self.assertIn("an output never overwrites an input", err)
        rc, _, err = run(["report", r, "--out", rep, "--gbench-json",
                          os.path.join(rep, "report.md")])
        self.assertEqual(rc, 2, err)
        self.assertIn("the report writes report.md", err)
        # An input where the report writes its own report.md.
        os.makedirs(rep, exist_ok=True)  # the writability probe may have made it
        inside = os.path.join(rep, "report.md")
        shutil.copy(r, inside)
        rc, _, err = run(["report", inside, "--out", rep])
        self.assertEqual(rc, 2, err)
        self.assertIn("--out " + rep + ": the report writes report.md there", err)
        self.assertEqual(load(inside), load(r))

    def test_coll_writes_its_csv_and_refuses_a_trace(self):
        out = self.path("c.csv")
        self.assertRuns(COLL + ["--csv", out, "--json", self.path("c.json")])
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
        doc = load(self.path("c.json"))
        self.assertEqual(len(rows), len(doc["rows"]))
        self.assertEqual([int(r["size"]) for r in rows], [r["size"] for r in doc["rows"]])
        self.assertEqual([float(r["busbw_gbps"]) for r in rows],
                         [r["busbw_gbps"] for r in doc["rows"]])
        self.assertEqual(rows[0]["simulated"], "true")
        self.refused(COLL + ["--trace", "t.json"], "--trace t.json", "coll writes no trace")

    def test_a_step_scenario_through_run_writes_the_step_csv(self):
        # As `step --csv` does (scripts/run.sh passes --csv to every scenario).
        out = self.path("s.csv")
        self.assertRuns(["run", "--backend", "sim", "-q", "--config", "step_cdmc_conflict", "--csv", out])
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertGreater(len(rows), 1)
        self.assertIn("why", rows[0])


if __name__ == "__main__":
    unittest.main()
