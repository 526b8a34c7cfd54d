"""Answers, not only numbers: the table's width, "why" column and recommendation line, the
diagnosis and recommendation in the JSON, `report` (Markdown, HTML, pictures, trend),
`--expect` (bring-up pass or fail) and `--gbench-json` (Google Benchmark's format)."""
import base64
import json
import os
import re
import shutil
import subprocess
import unittest

from e2e_common import BIN, SRC, TempDirTest, load, run, validate

CAUSES = {"queue_blocked", "sm_starved", "contention_slowdown", "chunking_cost",
          "tail_not_overlapped", "bubble", "late_bucket", "serialized_same_stream",
          "launch_overhead", "other"}
SMALL = ["run", "--backend", "sim", "--set", "cdmc=1,8", "--set", "sm_margin=0,16"]


def have_matplotlib():
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
    return subprocess.run([py, "-c", "import matplotlib"], capture_output=True).returncode == 0


class DefaultRun(TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls._dir = TempDirTest()
        cls._dir.setUp()
        cls.json_path = cls._dir.path("r.json")
        rc, cls.out, err = run(["run", "--backend", "sim", "--json", cls.json_path])
        assert rc == 0, err
        cls.doc = load(cls.json_path)

    @classmethod
    def tearDownClass(cls):
        cls._dir.tearDown()

    def test_table_fits_and_says_why(self):
        lines = self.out.splitlines()
        self.assertTrue(lines[0].startswith("SIMULATED"))
        self.assertLessEqual(max(len(l) for l in lines), 200, "a line is wider than 200")
        header = lines[1]
        self.assertIn("why", header)
        self.assertNotIn("case", header.split()[0], "case ids are not a column")
        # No case id is printed as a cell: the params are the columns.
        self.assertNotIn("cdmc=1,method=preset", "\n".join(lines[1:33]))
        # Widest-impact first: the param that moves the best time most leads.
        self.assertEqual(header.split()[0], self.doc["recommendation"]["knob"]["axis"])
        rec = [l for l in lines if l.startswith("recommendation (SIMULATED):")]
        self.assertEqual(len(rec), 1, self.out[-600:])
        self.assertIn("mattered most: sm_margin", rec[0])
        self.assertIn("faster than no overlap", rec[0])

    def test_none_is_one_case(self):
        none = [c for c in self.doc["cases"] if c["params"]["method"] == "none"]
        self.assertEqual([c["id"] for c in none], ["method=none,comm_ctas=0"])
        self.assertEqual(set(none[0]["params"]), {"method", "comm_ctas", "te_launch_ordering"})

    def test_every_exposed_case_is_diagnosed(self):
        validate(self.doc, "result_v1.schema.json")
        for c in self.doc["cases"]:
            d = c["diagnosis"]
            self.assertIsNotNone(d, c["id"])
            self.assertEqual(d["main_cause"], d["causes"][0]["cause"])
            self.assertTrue({x["cause"] for x in d["causes"]} <= CAUSES)
            total = sum(x["ms"] for x in d["causes"])
            self.assertAlmostEqual(total, c["exposed_comm_ms"], delta=0.1 * c["exposed_comm_ms"])
            self.assertIsNone(c["predicted"])  # simulated: nothing to predict
        by_id = {c["id"]: c for c in self.doc["cases"]}
        self.assertEqual(by_id["method=none,comm_ctas=0"]["diagnosis"]["main_cause"],
                         "serialized_same_stream")
        gemm_first = "cdmc=1,method=preset,order=gemm_first,sm_margin=0,comm_ctas=0,priority=comm_high"
        self.assertEqual(by_id[gemm_first]["diagnosis"]["main_cause"], "sm_starved")

    def test_recommendation_and_timelines(self):
        r = self.doc["recommendation"]
        best = min(self.doc["cases"], key=lambda c: c["overlapped_ms"]["median"])
        self.assertEqual(r["best_case"], best["id"])
        self.assertEqual(r["default_case"], self.doc["cases"][0]["id"])
        none = min(c["overlapped_ms"]["median"] for c in self.doc["cases"]
                   if c["params"]["method"] == "none")
        gain = (none - best["overlapped_ms"]["median"]) / none * 100
        self.assertAlmostEqual(r["gain_vs_none_pct"], gain, delta=1e-6)
        self.assertEqual(r["knob"]["axis"], "sm_margin")
        with_timeline = [c["id"] for c in self.doc["cases"] if "timeline" in c]
        worst = max(self.doc["cases"], key=lambda c: c["overlapped_ms"]["median"])
        self.assertEqual(sorted(with_timeline), sorted([best["id"], worst["id"]]))
        ops = best["timeline"]["ops"]
        self.assertTrue(any(o["critical"] for o in ops))
        self.assertAlmostEqual(max(o["end_us"] for o in ops) / 1000, best["overlapped_ms"]["median"],
                               places=6)

    def test_compare_reads_the_new_fields(self):
        out, _ = self.assertRuns(["compare", self.json_path, self.json_path])
        self.assertIn("31 SAME", out)


class Expect(TempDirTest):
    def test_pass_fail_and_bad_baselines(self):
        base = self.path("base.json")
        self.assertRuns(SMALL + ["--json", base, "-q"])
        out, _ = self.assertRuns(SMALL + ["-q", "--expect", base])
        self.assertIn("expect: PASS: 9 cases within", out)
        doc = load(base)
        slow = doc["cases"][1]
        for variant in ("overlapped_ms", "comm_ms"):
            for k in ("median", "p10", "p90", "min", "max", "mean"):
                slow[variant][k] *= 0.8  # the baseline was faster: this run is slower
        faster = self.write_json("faster.json", doc)
        rc, out, err = run(SMALL + ["-q", "--expect", faster, "--tolerance", "10%"])
        self.assertEqual(rc, 1, out + err)
        self.assertIn(f"expect: SLOWER {slow['id']}", out)
        self.assertIn("comm alone +25.0%", out)
        self.assertIn("expect: FAIL: 1 of 9 cases outside ±10.0 %", out)
        # Within a wide tolerance it passes.
        self.assertRuns(SMALL + ["-q", "--expect", faster, "--tolerance", "30"])
        # A baseline that cannot be read fails before anything runs (exit 2, naming it).
        rc, _, err = run(SMALL + ["-q", "--expect", self.path("missing.json")])
        self.assertEqual(rc, 2)
        self.assertIn("missing.json", err)
        rc, _, err = run(SMALL + ["-q", "--expect", base, "--tolerance", "lots"])
        self.assertEqual(rc, 2)
        self.assertIn("--tolerance", err)
        # No case in common: the baseline is of another sweep.
        rc, _, err = run(["pair", "--backend", "sim", "--gemm", "4096x4096x4096", "--bytes", "16MiB",
                          "-q", "--expect", base])
        self.assertEqual(rc, 2, err)
        self.assertIn("no case of this run is in the baseline", err)


class GbenchJson(TempDirTest):
    def test_google_benchmark_format(self):
        path = self.path("g.json")
        self.assertRuns(SMALL + ["-q", "--json", self.path("r.json"), "--gbench-json", path])
        g, r = load(path), load(self.path("r.json"))
        self.assertEqual(len(g["benchmarks"]), len(r["cases"]))
        for b, c in zip(g["benchmarks"], r["cases"]):
            self.assertEqual(b["name"], "layer/" + c["id"])
            self.assertEqual(b["time_unit"], "ms")
            self.assertEqual(b["real_time"], c["overlapped_ms"]["median"])
            self.assertEqual(b["exposed_comm_ms"], c["exposed_comm_ms"])
            self.assertEqual(b["label"], "SIMULATED")
            self.assertEqual(b["run_type"], "iteration")
        self.assertEqual(g["context"]["overlap_bench_simulated"], "true")
        # The same keys Google Benchmark itself writes, where its binary is at hand.
        bench = os.path.join(os.path.dirname(BIN), "bench_sim")
        if os.path.exists(bench):
            real = self.path("real.json")
            subprocess.run([bench, "--benchmark_filter=layer_case/1$", "--benchmark_min_time=0.01",
                            f"--benchmark_out={real}", "--benchmark_out_format=json"],
                           capture_output=True, check=True)
            theirs = load(real)
            self.assertTrue(set(theirs["context"]) <= set(g["context"]))
            mine = g["benchmarks"][0]
            for k, v in theirs["benchmarks"][0].items():
                if k in ("items_per_second", "ops_per_case"):  # their counters
                    continue
                self.assertIn(k, mine)
                self.assertIsInstance(mine[k], type(v) if not isinstance(v, float) else (int, float), k)
        # report converts an existing result too.
        self.assertRuns(["report", self.path("r.json"), "--out", self.path("rep"),
                         "--gbench-json", self.path("g2.json")])
        self.assertEqual(load(self.path("g2.json"))["benchmarks"], g["benchmarks"])


@unittest.skipUnless(have_matplotlib(), "python3-matplotlib is not installed")
class Report(TempDirTest):
    def make(self, name, *extra):
        p = self.path(name)
        self.assertRuns(SMALL + ["-q", "--json", p] + list(extra))
        return p

    def test_report_md_html_and_pictures(self):
        r = self.make("r.json")
        out_dir = self.path("rep")
        out, err = self.assertRuns(["report", r, "--out", out_dir, "--html"])
        md = open(os.path.join(out_dir, "report.md"), encoding="utf-8").read()
        self.assertIn("SIMULATED", md.split("\n\n")[1])
        for section in ("## Answer", "## End to end per method", "## CDMC × SM margin",
                        "## Why communication was exposed", "## Timelines of the best and the worst case"):
            self.assertIn(section, md)
        self.assertIn("**Use `", md)
        pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
        self.assertEqual(set(pictures), {"e2e_by_method.png", "heatmap_preset.png", "diagnosis.png",
                                         "timeline_best.png", "timeline_worst.png"})
        for p in pictures:
            with open(os.path.join(out_dir, p), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", p)
        html = open(os.path.join(out_dir, "report.html"), encoding="utf-8").read()
        self.assertEqual(html.count("data:image/png;base64,"), len(pictures))
        self.assertNotIn('src="e2e', html, "pictures must be inlined")
        first = html.split("data:image/png;base64,")[1].split('"')[0]
        self.assertEqual(base64.b64decode(first)[:4], b"\x89PNG")
        self.assertFalse([f for f in os.listdir(out_dir) if ".tmp" in f])

    def test_trend_over_results_and_history(self):
        old = self.make("old.json", "--set", "comm_ctas=8")  # another sweep, other ids
        new = self.make("new.json")
        history = self.path("history")
        os.makedirs(history)
        shutil.copy(old, os.path.join(history, "2024-01-01_sim_h100_sxm.json"))
        shutil.copy(new, os.path.join(history, "2024-02-01_sim_h100_sxm.json"))
        out_dir = self.path("rep")
        self.assertRuns(["report", new, "--out", out_dir, "--trend", "--history", history])
        md = open(os.path.join(out_dir, "report.md"), encoding="utf-8").read()
        self.assertIn("## Trend", md)
        self.assertIn("![", md.split("## Trend")[1])
        rows = [l for l in md.split("## Trend")[1].splitlines() if l.startswith("| 2024") or l.startswith("| new")]
        # The history copy of new.json is new.json itself: it appears once, last.
        self.assertEqual([r.split("|")[1].strip() for r in rows], ["2024-01-01_sim_h100_sxm", "new"])
        self.assertIn("9 NEW", rows[-1])
        self.assertTrue(os.path.exists(os.path.join(out_dir, "trend.png")))
        # Several results given directly: a trend too, oldest first, the subject last.
        self.assertRuns(["report", new, old, "--out", self.path("rep2")])
        md2 = open(os.path.join(self.path("rep2"), "report.md"), encoding="utf-8").read()
        self.assertIn("## Trend", md2)

    def test_bad_inputs(self):
        rc, _, err = run(["report", self.path("absent.json"), "--out", self.path("rep")])
        self.assertEqual(rc, 2)
        self.assertIn("absent.json", err)
        rc, _, err = run(["report", "--out", self.path("rep")])
        self.assertEqual(rc, 2)
        rc, _, err = run(["report", "--trend", "--history", self.path("none"), "--out", self.path("rep")])
        self.assertEqual(rc, 2)
        self.assertIn("no result files", err)


class ReportWithoutPictures(TempDirTest):
    def test_markdown_still_written_without_the_plot_script(self):
        r = self.path("r.json")
        self.assertRuns(SMALL + ["-q", "--json", r])
        out, err = self.assertRuns(["report", r, "--out", self.path("rep")],
                                   env={"OVERLAP_BENCH_PYTHON": self.path("no-python")})
        self.assertIn("no pictures", err)
        md = open(self.path("rep/report.md"), encoding="utf-8").read()
        self.assertIn("No pictures", md)
        self.assertIn("## Why communication was exposed", md)


if __name__ == "__main__":
    unittest.main(verbosity=2)
