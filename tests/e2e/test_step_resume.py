"""Journaled training-step sweeps (README: journaled sweeps): `step` and `run --config` on a step
scenario keep <json>.journal, a killed sweep loses nothing it finished, --resume runs only the
rest and writes byte for byte what an uninterrupted run writes, a journal of another sweep is
refused, and fault injection takes `die` and refuses `skip_collective` for steps."""
import os
import signal
import unittest

from e2e_common import TempDirTest, load, run, validate

# Six small cases (about 20 ms each on the sim).
STEP = ["step", "--backend", "sim", "--model", "gpt3_175b", "--layers", "8", "--gpus", "16",
        "--tp", "4", "--pp", "2", "--gbs", "16", "--cluster", "dgx_h100", "--cdmc", "1,8,32",
        "--tp-overlap", "on,off"]  # no -q: the tests read the progress lines
SCENARIO = {"scenario": "step", "model": "gpt3_175b", "cluster": "dgx_h100",
            "sweep": {"gpus": 16, "tp": 4, "pp": 2, "gbs": 16, "layers": 8, "cdmc": [1, 8, 32]}}


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class StepResume(TempDirTest):
    def test_a_killed_step_sweep_resumes_to_the_uninterrupted_document(self):
        ref, out = self.path("ref.json"), self.path("s.json")
        self.assertRuns(STEP + ["--json", ref])
        rc, _, _ = run(STEP + ["--json", out, "--inject", "die:rank=0:case=3"])
        self.assertEqual(rc, -signal.SIGKILL)
        self.assertFalse(os.path.exists(out), "no half-written result")
        self.assertEqual(len(lines(out + ".journal")), 4)  # the header and three cases
        # Without --resume the journal is not thrown away.
        rc, _, err = run(STEP + ["--json", out])
        self.assertEqual(rc, 2, err)
        self.assertIn("pass --resume to continue it", err)
        _, err = self.assertRuns(STEP + ["--json", out, "--resume"])
        self.assertIn("3 of 6 cases already finished", err)
        self.assertIn("[3/3]", err, "only the three missing cases ran")
        self.assertNotIn("[4/", err)
        self.assertEqual(read_bytes(out), read_bytes(ref))
        validate(load(out), "step_v1.schema.json")
        self.assertEqual(sorted(os.listdir(self.tmp)), ["ref.json", "s.json"],
                         "a finished sweep drops its journal")

    def test_run_config_resumes_a_step_scenario_dropping_a_torn_line(self):
        sc = self.write_json("sc.json", SCENARIO)
        base = ["run", "--config", sc, "--backend", "sim", "-q"]
        ref, out = self.path("ref.json"), self.path("r.json")
        self.assertRuns(base + ["--json", ref])
        rc, _, _ = run(base + ["--json", out], env={"OVERLAP_BENCH_INJECT": "die:rank=0:case=2"})
        self.assertEqual(rc, -signal.SIGKILL)
        with open(out + ".journal", "a") as f:
            f.write('{"id": "gpus=16,tp=4')  # a write cut short by the kill
        _, err = self.assertRuns(base + ["--json", out, "--resume"])
        self.assertIn("2 of 3 cases already finished", err)
        self.assertEqual(read_bytes(out), read_bytes(ref))
        self.assertFalse(os.path.exists(out + ".journal"))

    def test_a_journal_of_another_sweep_is_refused_and_kept(self):
        out = self.path("o.json")
        run(STEP + ["--json", out, "--inject", "die:rank=0:case=1"])
        # --set replaces STEP's cdmc axis (a second --cdmc would add values, listing 1 twice).
        for other in (["--set", "cdmc=1,8"], ["--iters", "3"]):
            rc, _, err = run(STEP + other + ["--json", out, "--resume"])
            self.assertEqual(rc, 2, err)
            self.assertIn(out + ".journal: belongs to another sweep", err)
        # A layer sweep's journal is not a step sweep's either.
        pair = self.path("p.json")
        run(["pair", "--backend", "sim", "--gemm", "1024x1024x1024", "--bytes", "1MiB", "-q",
             "--json", pair, "--inject", "die:rank=0:case=0"])
        rc, _, err = run(STEP + ["--json", pair, "--resume"])
        self.assertEqual(rc, 2, err)
        self.assertIn(pair + ".journal: belongs to another sweep", err)
        self.assertTrue(os.path.exists(out + ".journal"), "a refused resume keeps the journal")
        self.assertTrue(os.path.exists(pair + ".journal"))

    def test_inject_takes_die_only_and_resume_needs_json(self):
        for env, args, source in ((None, ["--inject", "skip_collective:rank=1:case=0"], "--inject"),
                                  ({"OVERLAP_BENCH_INJECT": "skip_collective:rank=0:case=1"}, [],
                                   "OVERLAP_BENCH_INJECT")):
            rc, _, err = run(STEP + args + ["--json", self.path("x.json")], env=env)
            self.assertEqual(rc, 2, err)
            self.assertIn(source + " skip_collective", err)
            self.assertIn("a training step takes only die", err)
        self.assertEqual(os.listdir(self.tmp), [], "refused before the journal is started")
        rc, _, err = run(STEP + ["--inject", "die:rank=0:case=6"])
        self.assertEqual(rc, 2, err)
        self.assertIn("case 6 does not exist (6 cases", err)
        rc, _, err = run(STEP + ["--resume"])
        self.assertEqual(rc, 2, err)
        self.assertIn("--resume: needs --json", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
