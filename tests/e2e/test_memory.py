"""What fits (docs/MEMORY.md): every step case carries the memory model's estimate; a case over
the GPU's memory is listed as OOM and not run, `--allow-oom` predicts it, and it is never
recommended; the CSV, compare and report read documents with OOM cases."""
import csv
import unittest

from e2e_common import TempDirTest, load, validate

# Llama 3.1 70B on 64 H100 at TP 8: PP 1 holds 80 layers' weights and gradients per GPU (OOM);
# PP 8 holds a tenth of them.
SWEEP = ["step", "--backend", "sim", "--model", "llama31_70b", "--gpus", "64", "--tp", "8",
         "--pp", "1,8", "--gbs", "8", "--cluster", "dgx_h100"]
OOM_ID = "gpus=64,tp=8,pp=1,gbs=8"
FITS_ID = "gpus=64,tp=8,pp=8,gbs=8"


class Memory(TempDirTest):
    def test_an_oom_case_is_listed_not_run(self):
        out, _ = self.assertRuns(SWEEP + ["--json", self.path("s.json"), "--csv",
                                          self.path("s.csv")])
        doc = load(self.path("s.json"))
        validate(doc, "step_v1.schema.json")
        self.assertEqual([c["id"] for c in doc["cases"]], [FITS_ID])
        self.assertEqual([c["id"] for c in doc["oom"]], [OOM_ID])
        self.assertNotIn("complete", doc, "an OOM case is answered, not missing")
        oom = doc["oom"][0]
        self.assertIs(oom["fits"], False)
        self.assertGreater(oom["memory_gib"]["total"], doc["config"]["hbm_gib"])
        parts = sum(v for k, v in oom["memory_gib"].items() if k != "total")
        self.assertAlmostEqual(parts, oom["memory_gib"]["total"], places=6)
        case = doc["cases"][0]
        self.assertIs(case["fits"], True)
        self.assertLess(case["memory_gib"]["total"], doc["config"]["hbm_gib"])
        self.assertEqual(doc["recommendation"]["best_case"], FITS_ID)
        row = [l for l in out.splitlines() if l.startswith("1 ")][0]
        self.assertIn("OOM", row)
        self.assertIn("1 case(s) over the GPU's 79.6 GiB not run", out)
        with open(self.path("s.csv"), newline="", encoding="utf-8") as f:
            rows = {r["id"]: r for r in csv.DictReader(f)}
        self.assertEqual(rows[OOM_ID]["fits"], "false")
        self.assertEqual(rows[OOM_ID]["step_ms.median"], "")
        self.assertEqual(rows[FITS_ID]["fits"], "true")

    def test_allow_oom_predicts_but_never_recommends(self):
        # The OOM case is faster here (no pipeline bubble): only the memory keeps it out.
        out, _ = self.assertRuns(SWEEP + ["--allow-oom", "--json", self.path("a.json")])
        doc = load(self.path("a.json"))
        validate(doc, "step_v1.schema.json")
        self.assertNotIn("oom", doc)
        by_id = {c["id"]: c for c in doc["cases"]}
        self.assertIs(by_id[OOM_ID]["fits"], False)
        self.assertLess(by_id[OOM_ID]["step_ms"]["median"], by_id[FITS_ID]["step_ms"]["median"])
        self.assertEqual(doc["recommendation"]["best_case"], FITS_ID)
        self.assertIn("do not fit the GPU's memory (OOM): never recommended", out)

    def test_documents_with_oom_cases_read_back(self):
        self.assertRuns(SWEEP + ["--json", self.path("s.json"), "-q"])
        out, _ = self.assertRuns(["compare", self.path("s.json"), self.path("s.json")])
        self.assertIn(FITS_ID.split(",")[2], out)
        self.assertRuns(["report", self.path("s.json"), "--out", self.path("rep")],
                        env={"OVERLAP_BENCH_PYTHON": "/nonexistent/python3"})
        doc = load(self.path("s.json"))
        doc["oom"][0]["fits"] = True
        self.write_json("bad.json", doc)
        _, err = self.assertRuns(["compare", self.path("bad.json"), self.path("s.json")], code=2)
        self.assertIn("oom[0].fits", err)


if __name__ == "__main__":
    unittest.main()
