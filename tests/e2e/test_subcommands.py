"""Every subcommand end to end on the sim backend; JSON checked against the schema."""
import csv
import json
import os
import unittest

from e2e_common import SRC, TempDirTest, load, run, validate

PAIR = ["pair", "--backend", "sim", "--gemm", "8192x8192x8192", "--coll", "all_gather",
        "--bytes", "64MiB", "--ranks", "8"]


class Pair(TempDirTest):
    def test_pair_table_json_csv_trace(self):
        out, _ = self.assertRuns(PAIR + ["--cdmc", "1,8", "--order", "comm_first,gemm_first",
                                         "--json", self.path("r.json"), "--csv", self.path("r.csv"),
                                         "--trace", self.path("t.json")])
        self.assertIn("SIMULATED", out)
        doc = load(self.path("r.json"))
        validate(doc, "result_v1.schema.json")
        self.assertEqual(doc["schema"], "overlap-bench/result/v1")
        self.assertTrue(doc["simulated"])
        self.assertTrue(doc["env"]["simulated"])
        self.assertEqual(len(doc["cases"]), 4)
        for c in doc["cases"]:
            self.assertGreater(c["overlapped_ms"]["median"], 0)
            self.assertGreaterEqual(c["serial_ms"]["median"], c["overlapped_ms"]["median"] * 0.999)
        with open(self.path("r.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 4)
        trace = load(self.path("t.json"))
        events = trace["traceEvents"] if isinstance(trace, dict) else trace
        threads = {e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"}
        self.assertTrue(any("compute" in t for t in threads), threads)
        self.assertTrue(any("comm" in t for t in threads), threads)
        self.assertTrue(trace["otherData"]["simulated"])
        self.assertFalse([f for f in os.listdir(self.tmp) if ".tmp" in f])

    def test_a_cluster_file_names_the_gpu(self):
        # Issue 15, item 5: `--cluster dgx_a100` simulates its A100s, not the default H100.
        for cluster, gpu in (("dgx_a100", "a100_sxm"), ("dgx_h100", "h100_sxm")):
            self.assertRuns(PAIR + ["--cluster", cluster, "-q", "--json", self.path(cluster)])
            self.assertEqual(load(self.path(cluster))["env"]["gpu"]["config"], gpu)
        # --gpu naming the cluster's own GPU is no conflict.
        self.assertRuns(PAIR + ["--cluster", "dgx_a100", "--gpu", "a100_sxm", "-q"])
        rc, _, err = run(["coll", "--backend", "sim", "--bytes", "1MiB", "--ranks", "16",
                          "--cluster", "dgx_a100", "--json", self.path("c.json")])
        self.assertEqual(rc, 0, err)
        self.assertEqual(load(self.path("c.json"))["env"]["gpu"]["config"], "a100_sxm")

    def test_producer_wait_changes_timeline_with_cdmc(self):
        self.assertRuns(PAIR + ["--comm-waits-on-producer", "50", "--cdmc", "1,8",
                                "--json", self.path("r.json")])
        doc = load(self.path("r.json"))
        by_cdmc = {c["params"]["cdmc"]: c for c in doc["cases"]}
        # CDMC=1 keeps host order (comm first); CDMC=8 lets the GEMM grab the SMs first, so the
        # two must not be the same schedule outcome.
        self.assertNotEqual(by_cdmc[1]["overlapped_ms"]["median"], by_cdmc[8]["overlapped_ms"]["median"])

    def test_output_is_deterministic(self):
        self.assertRuns(PAIR + ["--json", self.path("a.json"), "-q"])
        self.assertRuns(PAIR + ["--json", self.path("b.json"), "-q"])
        a, b = load(self.path("a.json")), load(self.path("b.json"))
        self.assertEqual(a["cases"], b["cases"])


class Coll(TempDirTest):
    def test_help_names_the_schema_it_writes(self):
        out, _ = self.assertRuns(["coll", "--help"])
        self.assertIn("overlap-bench/coll/v1", out)
        self.assertNotIn("result/v1", out)

    def test_coll_rows(self):
        out, _ = self.assertRuns(["coll", "--backend", "sim", "--op", "all_reduce", "--min", "1MiB",
                                  "--max", "64MiB", "--factor", "4", "--ranks", "8",
                                  "--json", self.path("c.json")])
        self.assertIn("busbw", out)
        self.assertIn("SIMULATED", out)
        doc = load(self.path("c.json"))
        validate(doc, "coll_v1.schema.json")
        rows = doc["rows"]
        self.assertEqual([r["size"] for r in rows], [1 << 20, 4 << 20, 16 << 20, 64 << 20])
        busbw = [r["busbw_gbps"] for r in rows]
        self.assertEqual(busbw, sorted(busbw), "busbw should grow with size")
        for r in rows:
            self.assertAlmostEqual(r["busbw_gbps"], r["algbw_gbps"] * 2 * 7 / 8, places=3)
            self.assertEqual(r["wrong"], 0)


class Run(TempDirTest):
    def test_default_scenario(self):
        out, _ = self.assertRuns(["run", "--backend", "sim", "--json", self.path("r.json")])
        self.assertIn("SIMULATED", out)
        doc = load(self.path("r.json"))
        validate(doc, "result_v1.schema.json")
        # preset over cdmc x order x sm_margin; none once: those axes change nothing for it.
        self.assertEqual(len(doc["cases"]), 3 * 2 * 5 + 1)
        methods = {c["params"]["method"] for c in doc["cases"]}
        self.assertEqual(methods, {"preset", "none"})
        best_preset = min(c["exposed_comm_ms"] for c in doc["cases"] if c["params"]["method"] == "preset")
        best_none = min(c["exposed_comm_ms"] for c in doc["cases"] if c["params"]["method"] == "none")
        self.assertLess(best_preset, best_none, "the preset must hide some communication")
        # The table's closing line compares methods on the end-to-end (overlapped) time.
        line = [l for l in out.splitlines() if l.startswith("best overlapped per method:")]
        self.assertEqual(len(line), 1, out[-500:])
        best = min(c["overlapped_ms"]["median"] for c in doc["cases"] if c["params"]["method"] == "preset")
        self.assertIn(f"preset {best:.3f} ms", line[0])

    def test_te_launch_ordering_removes_the_cdmc_penalty(self):
        # Without TE's launch-ordering event, CDMC=8 lets persistent GEMMs take the SMs before
        # the bulk comm kernels; with it (TE's behaviour on Hopper), CDMC=8 comes within 10 % of
        # CDMC=1 (what remains is ordinary queueing: with one queue a later chunk's send/recv
        # waits behind the GEMM enqueued before it).
        base = ["run", "--backend", "sim", "--set", "cdmc=1,8", "--set", "method=preset",
                "--set", "sm_margin=0", "--set", "order=comm_first", "-q"]
        exposed = {}
        for mode in ("off", "auto"):
            out = self.path(f"{mode}.json")
            self.assertRuns(base + ["--set", f"te_launch_ordering={mode}", "--json", out])
            exposed[mode] = {c["params"]["cdmc"]: c["exposed_comm_ms"] for c in load(out)["cases"]}
        self.assertGreater(exposed["off"][8], 1.5 * exposed["off"][1])
        self.assertAlmostEqual(exposed["auto"][8], exposed["auto"][1], delta=0.10 * exposed["auto"][1])

    def test_no_sequence_parallel_still_communicates(self):
        self.assertRuns(["run", "--backend", "sim", "--set", "sequence_parallel=false", "--set", "cdmc=1",
                         "--set", "sm_margin=0", "--set", "order=comm_first", "--set", "method=none",
                         "--json", self.path("r.json"), "-q"])
        c = load(self.path("r.json"))["cases"][0]
        self.assertGreater(c["comm_ms"]["median"], 0.5)

    def test_set_overrides_axes(self):
        self.assertRuns(["run", "--backend", "sim", "--set", "cdmc=1", "--set", "method=preset",
                         "--set", "sm_margin=0,16", "--set", "order=comm_first",
                         "--set", "comm_ctas=8,16,24", "--json", self.path("r.json"), "-q"])
        doc = load(self.path("r.json"))
        self.assertEqual(len(doc["cases"]), 6)
        self.assertEqual({c["params"]["comm_ctas"] for c in doc["cases"]}, {8, 16, 24})

    def test_bridge_config_scenario(self):
        bridge = os.path.join(SRC, "tests", "data", "resolve", "gpt3_175b_tp4.json")
        sc = {"scenario": "layer", "model": "gpt3_175b", "overlap": {"bridge_config": bridge},
              "sweep": {"cdmc": [1], "method": ["preset"]}}
        p = self.write_json("s.json", sc)
        self.assertRuns(["run", "--backend", "sim", "--config", p, "--json", self.path("r.json"), "-q"])
        doc = load(self.path("r.json"))
        self.assertEqual(doc["config"]["parallel"]["tp"], 4)
        self.assertIn("bridge_resolved", doc["config"])


class Resolve(TempDirTest):
    def test_resolve_good_config(self):
        out, _ = self.assertRuns(["resolve", "--input",
                                  os.path.join(SRC, "tests", "data", "resolve", "gpt3_175b_tp4.json")])
        doc = json.loads(out)
        self.assertTrue(doc["model"]["tp_comm_overlap"])
        self.assertIn("qkv_fprop", doc["model"]["tp_comm_overlap_cfg"])
        self.assertEqual(doc["errors"], [])

    def test_resolve_error_exits_2_with_errors_array(self):
        p = self.write_json("bad.json", {"model": {"tensor_model_parallel_size": 1, "sequence_parallel": True},
                                         "comm_overlap": {"tp_comm_overlap": False}})
        rc, out, err = run(["resolve", "--input", p])
        self.assertEqual(rc, 2, err)
        self.assertTrue(json.loads(out)["errors"])


class Presets(TempDirTest):
    def test_list_and_show(self):
        out, _ = self.assertRuns(["presets"])
        self.assertEqual(out.count("userbuffers_"), 19)
        out, _ = self.assertRuns(["presets", "--show", "userbuffers_bf16_h100_h12288_tp4_mbs1_seqlen2048"])
        json.loads(out)


class Compare(TempDirTest):
    def test_same_and_regression(self):
        self.assertRuns(PAIR + ["--json", self.path("a.json"), "-q"])
        out, _ = self.assertRuns(["compare", self.path("a.json"), self.path("a.json")])
        self.assertIn("SAME", out)
        doc = load(self.path("a.json"))
        for c in doc["cases"]:
            for k in ("median", "p10", "p90", "min", "max", "mean"):
                c["overlapped_ms"][k] *= 1.5
        slower = self.write_json("b.json", doc)
        rc, out, err = run(["compare", self.path("a.json"), slower, "--threshold", "5"])
        self.assertEqual(rc, 1, out + err)
        self.assertIn("SLOWER", out)


@unittest.skipIf(os.path.exists("/dev/nvidia0"), "a GPU is present")
class Backends(TempDirTest):
    def test_real_backend_without_gpu_exits_3(self):
        for backend in ("cuda", "loopback"):
            rc, out, err = run(PAIR[:1] + ["--backend", backend] + PAIR[3:])
            self.assertEqual(rc, 3, err)
            self.assertIn("use --backend sim", err)
            self.assertNotIn("Traceback", err)

    def test_missing_cuda_plugin_exits_3(self):
        rc, out, err = run(PAIR[:1] + ["--backend", "cuda"] + PAIR[3:],
                           env={"OVERLAP_BENCH_CUDA_PLUGIN": os.path.join(self.tmp, "absent.so")})
        self.assertEqual(rc, 3, err)
        self.assertIn("use --backend sim", err)

    def test_auto_says_what_it_chose(self):
        rc, out, err = run(PAIR[:1] + ["--backend", "auto"] + PAIR[3:] + ["-q"])
        self.assertEqual(rc, 0, err)
        self.assertIn("chose sim", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
