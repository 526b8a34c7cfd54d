"""A training step answers as a layer sweep does (README "The training step", docs/ARCHITECTURE.md
§7.2–7.4): the recommendation in the step document and under the table, `compare` on two step
documents (and its refusal of a step against a layer result), `--expect` and `--gbench-json` on
`step` and on `run --config <step scenario>`, and `report STEP.json`. One small sweep (8 layers,
8 GPUs, 2 cases) is run once and reused."""
import base64
import copy
import os
import re
import tempfile
import unittest

from e2e_common import TempDirTest, load, run, validate
from test_answers import have_matplotlib

STEP = ["step", "--backend", "sim", "--model", "gpt3_175b", "--layers", "8", "--gpus", "8",
        "--tp", "2", "--pp", "2", "--gbs", "8", "--cdmc", "1,8"]
SCENARIO = {"scenario": "step", "model": "gpt3_175b",
            "sweep": {"gpus": 8, "tp": 2, "pp": 2, "layers": 8, "gbs": 8, "cdmc": [1, 8]}}


def slower(doc, index, factor, part):
    """A copy of `doc` whose case `index` took `factor` times as long, all of it in `part`."""
    d = copy.deepcopy(doc)
    c = d["cases"][index]
    extra = c["step_ms"]["median"] * (factor - 1)
    for k in ("median", "p10", "p90", "min", "max", "mean"):
        c["step_ms"][k] *= factor
    c["breakdown_ms"][part] += extra
    if part not in ("compute", "optimizer"):
        c["exposed_ms"] += extra
    return d


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class StepAnswers(TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls._shared = tempfile.TemporaryDirectory()  # the sweep every test reads
        cls.json_path = os.path.join(cls._shared.name, "base.json")
        rc, cls.out, err = run(STEP + ["--json", cls.json_path])
        assert rc == 0, err
        cls.doc = load(cls.json_path)

    @classmethod
    def tearDownClass(cls):
        cls._shared.cleanup()

    def test_recommendation_in_the_document_and_under_the_table(self):
        validate(self.doc, "step_v1.schema.json")
        r = self.doc["recommendation"]
        cases = self.doc["cases"]
        best = min(cases, key=lambda c: c["step_ms"]["median"])
        self.assertEqual(r["best_case"], best["id"])
        self.assertEqual(r["best_step_ms"], best["step_ms"]["median"])
        self.assertEqual(r["default_case"], cases[0]["id"])
        default = cases[0]["step_ms"]["median"]
        self.assertAlmostEqual(r["gain_vs_default_pct"],
                               100 * (default - best["step_ms"]["median"]) / default, places=9)
        self.assertEqual(r["knob"]["axis"], "cdmc")
        self.assertEqual({r["knob"]["best"], r["knob"]["worst"]}, {1, 8})
        self.assertNotIn("none_case", r)
        lines = [l for l in self.out.splitlines() if l.startswith("recommendation (SIMULATED): ")]
        self.assertEqual(len(lines), 1, self.out)
        self.assertIn("mattered most: cdmc", lines[0])

    def test_compare_step_with_step(self):
        out, _ = self.assertRuns(["compare", self.json_path, self.json_path])
        self.assertIn("2 SAME", out)
        self.assertIn("note: BASE and NEW are simulated", out)
        self.assertIn("times are step medians", out)
        header = out.splitlines()[1]
        for part in ("compute", "dp exp", "bubble"):
            self.assertIn(part, header)
        worse = self.write_json("worse.json", slower(self.doc, 1, 1.2, "dp_exposed"))
        rc, out, err = run(["compare", self.json_path, worse])
        self.assertEqual(rc, 1, out + err)
        row = [l for l in out.splitlines() if l.startswith(self.doc["cases"][1]["id"] + " ")][0]
        self.assertIn("SLOWER", row)
        self.assertIn("+20.0%", row)
        self.assertRegex(row, r"\+\d+\.\d\*")  # dp_exposed moved past the bar
        self.assertIn("REGRESSION", out)

    def test_compare_refuses_a_step_against_a_layer_result(self):
        layer = self.path("layer.json")
        self.assertRuns(["run", "--backend", "sim", "--set", "cdmc=1", "--set", "sm_margin=0",
                         "-q", "--json", layer])
        for a, b in ((self.json_path, layer), (layer, self.json_path)):
            rc, out, err = run(["compare", a, b])
            self.assertEqual(rc, 2, out + err)
            self.assertIn(a, err)
            self.assertIn(b, err)
            self.assertIn("a step document", err)
            self.assertIn("a layer/pair result", err)

    def test_expect_passes_and_fails(self):
        out, _ = self.assertRuns(STEP + ["-q", "--expect", self.json_path])
        self.assertIn("expect: PASS: 2 cases within ±5.0 %", out)
        # The baseline computed faster: this run's case 0 is outside a 10 % tolerance.
        faster = self.write_json("faster.json", slower(self.doc, 0, 1 / 1.25, "compute"))
        rc, out, err = run(STEP + ["-q", "--expect", faster, "--tolerance", "10"])
        self.assertEqual(rc, 1, out + err)
        self.assertIn(f"expect: SLOWER {self.doc['cases'][0]['id']}", out)
        self.assertIn("moved: compute +", out)
        self.assertIn("expect: FAIL: 1 of 2 cases outside ±10.0 %", out)
        # A layer result is no baseline for a step (exit 2, before anything runs).
        layer = self.path("layer.json")
        self.assertRuns(["run", "--backend", "sim", "--set", "cdmc=1", "--set", "sm_margin=0",
                         "-q", "--json", layer])
        rc, _, err = run(STEP + ["-q", "--expect", layer])
        self.assertEqual(rc, 2, err)
        self.assertIn("--expect " + layer, err)
        self.assertIn("a step document", err)

    def test_run_step_scenario_takes_expect_and_gbench_json(self):
        scenario = self.write_json("s.json", SCENARIO)
        g = self.path("g.json")
        out, _ = self.assertRuns(["run", "--config", scenario, "--backend", "sim", "-q",
                                  "--expect", self.json_path, "--gbench-json", g])
        self.assertIn("expect: PASS: 2 cases", out)
        bench = load(g)
        self.assertEqual([b["name"] for b in bench["benchmarks"]],
                         ["step/" + c["id"] for c in self.doc["cases"]])
        for b, c in zip(bench["benchmarks"], self.doc["cases"]):
            self.assertEqual(b["real_time"], c["step_ms"]["median"])
            self.assertEqual(b["label"], "SIMULATED")
            self.assertEqual(b["dp_exposed_ms"], c["breakdown_ms"]["dp_exposed"])
            self.assertEqual(b["mfu"], c["mfu"])
        self.assertEqual(bench["context"]["overlap_bench_simulated"], "true")

    def test_report(self):
        out_dir = self.path("rep")
        out, err = self.assertRuns(["report", self.json_path, "--out", out_dir, "--html",
                                    "--gbench-json", self.path("g.json")])
        md = read_text(os.path.join(out_dir, "report.md"))
        self.assertIn("SIMULATED", md.split("\n\n")[1])
        for section in ("## Answer", "## Where the step went", "## Why the step was not all compute",
                        "## Throughput"):
            self.assertIn(section, md)
        self.assertIn("**Use `cdmc=", md)
        self.assertTrue(os.path.exists(os.path.join(out_dir, "report.html")))
        self.assertEqual(len(load(self.path("g.json"))["benchmarks"]), 2)
        if have_matplotlib():
            pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
            self.assertEqual(set(pictures), {"breakdown.png", "diagnosis.png", "throughput.png"})
            for p in pictures:
                with open(os.path.join(out_dir, p), "rb") as f:
                    self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", p)
            html = read_text(os.path.join(out_dir, "report.html"))
            self.assertEqual(html.count("data:image/png;base64,"), 3)
            first = html.split("data:image/png;base64,")[1].split('"')[0]
            self.assertEqual(base64.b64decode(first)[:4], b"\x89PNG")
        # A step report has no trend.
        rc, _, err = run(["report", self.json_path, self.json_path, "--out", self.path("rep2")])
        self.assertEqual(rc, 2, err)
        self.assertIn("step document", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
