"""The training step end to end: the `step` subcommand and a step scenario through `run`, the
step/v1 document checked against its schema, bad layouts named, and the MPI path."""
import csv
import json
import os
import shutil
import signal
import subprocess
import unittest

from e2e_common import BIN, HAVE_MPI, SRC, TempDirTest, load, run, validate, mpi_command

SMALL = ["step", "--backend", "sim", "--model", "gpt3_175b", "--layers", "8", "--gpus", "16",
         "--tp", "4", "--pp", "2", "--gbs", "16", "--cluster", "dgx_h100"]


class Step(TempDirTest):
    def test_flash_attention_2_on_the_timeline(self):
        """The GPT-3 NeMo recipe's model runs FlashAttention-2 (its launcher's NVTE_FUSED_ATTN=0):
        on each layer pass TE's copy of q, k, v into flash-attn's layout runs just before the
        forward kernel and the copy of the gradients back just after the backward one, on the
        compute stream, and the kernels take cuDNN's time times the ratio of the two rates."""
        model = load(os.path.join(SRC, "configs", "models", "gpt3_175b_nemo.json"))
        self.assertEqual(model["attention_backend"], "flash2")
        model["attention_backend"] = "flash"
        self.write_json("cudnn.json", model)
        gpu = load(os.path.join(SRC, "configs", "gpus", "h100_sxm.json"))["sim"]
        rates = gpu["flash_attention_efficiency"]
        args = ["step", "--backend", "sim", "--layers", "8", "--gpus", "16", "--tp", "4",
                "--pp", "2", "--gbs", "16", "--cluster", "dgx_h100"]

        def compute_ops(model_ref, name):
            self.assertRuns(args + ["--model", model_ref, "--trace", self.path(name)])
            ev = load(self.path(name))["traceEvents"]
            ops = [e for e in ev if e.get("ph") == "X" and e["pid"] == 0 and e.get("tid") == 0]
            return sorted(ops, key=lambda e: e["ts"])

        fa2 = compute_ops("gpt3_175b_nemo", "fa2.json")
        cudnn = compute_ops(self.path("cudnn.json"), "cudnn.json.trace")
        def slot(e):  # c0.mb0.L0.<slot>[.step0.gemm]; the embedding and loss have no layer
            parts = e["name"].split(".")
            return parts[3] if len(parts) > 3 and parts[2].startswith("L") else e["name"]

        self.assertFalse([e for e in cudnn if "_fa_" in e["name"]])
        pairs = {"attn_fwd_fa_prepare": "attn_fwd", "attn_bwd": "attn_bwd_fa_prepare"}
        seen = 0
        for a, b in zip(fa2, fa2[1:]):
            if slot(a) in pairs:
                self.assertEqual(slot(b), pairs[slot(a)], a["name"])
                self.assertAlmostEqual(b["ts"], a["ts"] + a["dur"], delta=1e-3)
                seen += 1
        self.assertEqual(seen, 2 * sum(1 for e in fa2 if slot(e) == "attn_fwd"))
        self.assertGreater(seen, 0)
        dur = lambda ops, s: next(e["dur"] for e in ops if slot(e) == s)
        for s, key in (("attn_fwd", "fwd"), ("attn_bwd", "bwd")):
            self.assertAlmostEqual(dur(fa2, s) / dur(cudnn, s),
                                   rates[key]["value"] / rates["flash2"][key]["value"], delta=0.01)

    def test_table_json_and_trace(self):
        out, _ = self.assertRuns(SMALL + ["--cdmc", "1,8", "--json", self.path("s.json"),
                                          "--trace", self.path("t.json")])
        self.assertIn("SIMULATED", out)
        self.assertIn("bubble", out)
        doc = load(self.path("s.json"))
        validate(doc, "step_v1.schema.json")
        self.assertTrue(doc["simulated"])
        self.assertEqual(len(doc["cases"]), 2)
        for c in doc["cases"]:
            parts = sum(c["breakdown_ms"].values())
            self.assertAlmostEqual(parts, c["step_ms"]["median"], delta=0.01 * parts)
            self.assertEqual(c["config"]["dp"], 2)
            self.assertGreater(c["mfu"], 0)
            # The layer's cause vocabulary (README, "Why: the causes"), adding up to exposed_ms.
            b = c["breakdown_ms"]
            self.assertAlmostEqual(c["exposed_ms"], parts - b["compute"] - b["optimizer"],
                                   delta=1e-6 * parts)
            d = c["diagnosis"]
            self.assertEqual(d["main_cause"], "bubble")
            self.assertAlmostEqual(sum(x["ms"] for x in d["causes"]), c["exposed_ms"],
                                   delta=0.1 * c["exposed_ms"])
        self.assertIn(" why", out.splitlines()[1])
        self.assertIn("bubble ", out.splitlines()[2])
        trace = load(self.path("t.json"))
        procs = {e["args"]["name"] for e in trace["traceEvents"]
                 if e.get("ph") == "M" and e.get("name") == "process_name"}
        self.assertEqual(procs, {"stage 0 (sim)", "stage 1 (sim)"})
        self.assertTrue(trace["otherData"]["simulated"])

    def with_flag(self, flag, value):
        args = list(SMALL)
        args[args.index(flag) + 1] = value
        return args

    def test_a_sweep_of_the_work_per_step_is_ranked_by_throughput(self):
        # A larger batch takes longer per step but moves more tokens per second per GPU; more
        # GPUs finish a step sooner with fewer tokens per GPU (issue 15, item 2).
        for flag, values in (("--gbs", "16,64"), ("--gpus", "16,32")):
            with self.subTest(flag=flag):
                out, _ = self.assertRuns(self.with_flag(flag, values) + ["--json", self.path("s.json")])
                doc = load(self.path("s.json"))
                validate(doc, "step_v1.schema.json")
                rec = doc["recommendation"]
                self.assertEqual(rec["ranked_by"], "tokens_per_s_per_gpu")
                by_rate = max(doc["cases"], key=lambda c: c["tokens_per_s_per_gpu"])
                by_time = min(doc["cases"], key=lambda c: c["step_ms"]["median"])
                self.assertNotEqual(by_rate["id"], by_time["id"], "the sweep tests nothing")
                self.assertEqual(rec["best_case"], by_rate["id"])
                self.assertEqual(rec["best_tokens_per_s_per_gpu"], by_rate["tokens_per_s_per_gpu"])
                self.assertIn("spread_tokens_per_s_per_gpu", rec["knob"])
                line = [l for l in out.splitlines() if l.startswith("recommendation")][0]
                self.assertIn("tokens/s/GPU", line)
                self.assertIn("ranked by tokens/s/GPU, not step time (%s differ between cases)"
                              % flag[2:], line)

    def test_the_same_work_is_ranked_by_step_time(self):
        out, _ = self.assertRuns(SMALL + ["--cdmc", "1,8", "--json", self.path("s.json")])
        rec = load(self.path("s.json"))["recommendation"]
        self.assertEqual(rec["ranked_by"], "step_ms")
        self.assertIn("spread_ms", rec["knob"] or {"spread_ms": 0})
        self.assertIn("; ranked by step time", out)

    def test_the_table_folds_constant_params_and_q_is_quiet(self):
        out, _ = self.assertRuns(SMALL + ["--cdmc", "1,8", "--dp-overlap", "on,off"])
        lines = out.splitlines()
        self.assertTrue(lines[1].split()[0] in ("cdmc", "dp_overlap"), lines[1])
        self.assertNotIn("gpus=16", "\n".join(lines[2:6]))
        folded = [l for l in lines if l.startswith("all cases:")]
        self.assertEqual(len(folded), 1, out)
        for p in ("gpus=16", "tp=4", "pp=2", "gbs=16", "layers=8"):
            self.assertIn(p, folded[0])
        self.assertLessEqual(max(len(l) for l in lines[1:6]), 200, out)
        rc, out, err = run(SMALL + ["--cdmc", "1,8", "-q"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "")
        self.assertNotIn("[1/2]", err)
        self.assertNotIn("[2/2]", err)

    def test_the_csv_has_a_row_per_case_and_why(self):
        out, _ = self.assertRuns(SMALL + ["--cdmc", "1,8", "--json", self.path("s.json"),
                                          "--csv", self.path("s.csv")])
        doc = load(self.path("s.json"))
        with open(self.path("s.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([r["id"] for r in rows], [c["id"] for c in doc["cases"]])
        for r, c in zip(rows, doc["cases"]):
            self.assertEqual(r["simulated"], "true")
            self.assertEqual(r["params.cdmc"], str(c["params"]["cdmc"]))
            self.assertEqual(float(r["step_ms.median"]), c["step_ms"]["median"])
            self.assertEqual(r["main_cause"], c["diagnosis"]["main_cause"])
            self.assertTrue(r["why"], r)
            self.assertIn(r["why"], out)  # the table's why, word for word

    def test_a_repeated_value_is_refused(self):
        rc, _, err = run(self.with_flag("--gpus", "16,16") + ["--json", self.path("s.json")])
        self.assertEqual(rc, 2, err)
        self.assertIn("--gpus: value '16' is listed twice", err)
        self.assertFalse(os.path.exists(self.path("s.json")))

    def test_step_scenario_through_run(self):
        sc = {"scenario": "step", "model": "llama3_70b", "cluster": "dgx_h100",
              "sweep": {"gpus": 32, "tp": 4, "pp": 2, "vp": [1, 2], "layers": 8, "gbs": 16}}
        p = self.write_json("s.json", sc)
        self.assertRuns(["run", "--config", p, "--backend", "sim", "--json", self.path("r.json"),
                         "-q"])
        doc = load(self.path("r.json"))
        self.assertEqual(doc["schema"], "overlap-bench/step/v1")
        self.assertEqual([c["config"]["vp"] for c in doc["cases"]], [1, 2])
        # --expect and --gbench-json on a step scenario: test_step_answers.py.

    def test_model_file_with_unknown_key_is_named(self):
        m = {"hidden_size": 4096, "ffn_hidden_size": 16384, "num_attention_heads": 32,
             "seq_length": 2048, "num_layers": 8, "vocab_size": 256, "hidden_sise": 1}
        p = self.write_json("m.json", m)
        rc, _, err = run(["step", "--backend", "sim", "--model", p])
        self.assertEqual(rc, 2, err)
        self.assertIn("hidden_sise", err)

    def test_bad_layouts_exit_2_naming_the_flag(self):
        for args, flag in [(["--tp", "5"], "--tp"), (["--vp", "2"], "--vp"),
                           (["--gpus", "12", "--tp", "8"], "--gpus"),
                           (["--recompute", "half"], "--recompute"),
                           (["--gbs", "-3"], "--gbs"), (["--model", "gpt9"], "--model"),
                           (["--cp", "2", "--gpus", "16", "--tp", "8", "--seq", "2050"], "--seq")]:
            rc, _, err = run(["step", "--backend", "sim"] + args)
            self.assertEqual(rc, 2, f"{args}: {err}")
            self.assertIn(flag, err, args)


class StepSignals(TempDirTest):
    def test_sigint_writes_the_finished_cases_exits_130_and_resumes(self):
        out = self.path("s.json")
        cmd = [BIN, "step", "--backend", "sim", "--model", "gpt3_175b", "--cluster", "dgx_h100",
               "--gpus", "256", "--tp", "4", "--pp", "8", "--vp", "3", "--gbs", "256",
               "--cdmc", "1,8,32", "--tp-overlap", "on,off", "--json", out]  # progress: no -q
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = []
        for line in p.stderr:  # progress lines: "[k/6] id"
            seen.append(line)
            if line.startswith("[1/6]"):
                p.send_signal(signal.SIGINT)
                break
        _, rest = p.communicate(timeout=120)
        err = "".join(seen) + rest
        self.assertEqual(p.returncode, 130, err)
        doc = load(out)
        validate(doc, "step_v1.schema.json")
        done = len(doc["cases"])
        self.assertGreaterEqual(done, 1)
        self.assertLess(done, 6, "the signal came too late to test anything")
        self.assertIn("stopped by SIGINT after %d of 6 cases; %s holds them; --resume measures "
                      "the rest" % (done, out), err)
        with open(out + ".journal") as f:
            self.assertEqual(len(f.read().splitlines()), done + 1)  # the header, then the cases
        # --resume runs only the rest (tests/e2e/test_step_resume.py compares the bytes).
        rc, _, err = run(cmd[1:] + ["--resume"])
        self.assertEqual(rc, 0, err)
        self.assertIn("%d of 6 cases already finished" % done, err)
        whole = load(out)["cases"]
        self.assertEqual(len(whole), 6)
        self.assertEqual(whole[:done], doc["cases"])
        self.assertFalse(os.path.exists(out + ".journal"))


@unittest.skipUnless(HAVE_MPI and shutil.which("mpirun"), "built without MPI")
class StepMpi(TempDirTest):
    def test_four_ranks_pp2_dp2(self):
        cmd, env = mpi_command(4, ["step", "--backend", "sim", "--model", "gpt3_175b", "--layers",
                                   "4", "--gpus", "4", "--pp", "2", "--gbs", "8", "--json",
                                   self.path("s.json")])
        p = subprocess.run(cmd + ["--trace", self.path("t.json")], capture_output=True, text=True,
                           env=env, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        doc = load(self.path("s.json"))
        validate(doc, "step_v1.schema.json")
        self.assertEqual(doc["env"]["ranks"], 4)
        self.assertEqual(doc["cases"][0]["config"]["dp"], 2)
        self.assertEqual(doc["cases"][0]["config"]["pp"], 2)
        self.assertEqual(p.stdout.count("SIMULATED — model output"), 1)  # rank 0 alone prints
        # Rank 0 alone writes, and the four ranks' step is the one a single process simulates.
        self.assertEqual(sorted(os.listdir(self.tmp)), ["s.json", "t.json"])
        one = subprocess.run(cmd[:1] + ["-np", "1"] + cmd[3:-1] + [self.path("one.json")],
                             capture_output=True, text=True, env=env, timeout=300)
        self.assertEqual(one.returncode, 0, one.stdout + one.stderr)
        self.assertEqual(load(self.path("one.json"))["cases"][0]["step_ms"],
                         doc["cases"][0]["step_ms"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
