"""Blackwell, NVL72 and NCCL's newer settings end to end (README "Blackwell, NVL72 and NCCL
2.28+"): the NCCL axes enter case ids only where given, the copy-engine all-gather beside a GEMM
runs on no SM, an NVLink domain larger than a node keeps a group off the NICs, and the new dtypes
run where the GPU file has them."""
import json
import os
import re
import unittest

from e2e_common import SRC, TempDirTest, load, run

SIM = ["--backend", "sim", "-q"]


class NcclAxes(TempDirTest):
    def test_a_run_lists_the_nccl_axes_only_where_given(self):
        out = self.path("r.json")
        code, _, err = run(["run"] + SIM + ["--set", "cta_policy=default,zero", "--set", "cdmc=8",
                                            "--json", out])
        self.assertEqual(code, 0, err)
        ids = [c["id"] for c in load(out)["cases"]]
        self.assertTrue(all(re.search(r",cta_policy=(default|zero)$", i) for i in ids), ids[:4])
        self.assertEqual(sum(i.endswith("cta_policy=zero") for i in ids), len(ids) // 2)
        plain = self.path("p.json")
        code, _, err = run(["run"] + SIM + ["--set", "cdmc=8", "--json", plain])
        self.assertEqual(code, 0, err)
        self.assertFalse(any("cta_policy" in c["id"] for c in load(plain)["cases"]))

    def test_zero_sm_all_gather_beside_a_gemm_frees_the_gemm(self):
        out = self.path("pair.json")
        code, _, err = run(["pair"] + SIM + ["--gpu", "gb200", "--gemm", "8192x8192x8192",
                                             "--bytes", "256MiB", "--cta-policy", "default,zero",
                                             "--json", out])
        self.assertEqual(code, 0, err)
        cases = {c["params"]["cta_policy"]: c for c in load(out)["cases"]}
        self.assertEqual(set(cases), {"default", "zero"})
        # The GEMM beside the copy engines slows by HBM sharing only, less than beside SM channels.
        def gemm_slow(c):
            return c["gemm_slowdown"]
        self.assertGreater(gemm_slow(cases["zero"]), 1.0)
        self.assertLess(gemm_slow(cases["zero"]), gemm_slow(cases["default"]))


class NvlinkDomain(TempDirTest):
    def busbw(self, *extra):
        out = self.path("coll.json")
        code, _, err = run(["coll"] + SIM + ["--gpu", "gb200", "--cluster", "gb200_nvl72",
                                             "--op", "all_reduce", "--bytes", "1GiB",
                                             "--ranks", "16", "--json", out] + list(extra))
        self.assertEqual(code, 0, err)
        return load(out)["rows"][0]["busbw_gbps"]

    def test_sixteen_ranks_stay_on_nvlink_in_a_rack_and_not_in_trays(self):
        rack = self.busbw()
        trays = self.busbw("--nvlink-domain", "4")
        self.assertGreater(rack, 3 * trays)


class StepOnNvl72(TempDirTest):
    def test_the_domain_and_the_cta_policy_are_step_axes(self):
        out = self.path("step.json")
        code, _, err = run(["step"] + SIM + ["--model", "llama31_70b", "--cluster", "gb200_nvl72",
                                             "--gpus", "64", "--tp", "4", "--pp", "4", "--vp", "5",
                                             "--cp", "2", "--gbs", "128", "--seq", "8192",
                                             "--layers", "20", "--nvlink-domain", "72,8",
                                             "--set", "cta_policy=default,zero", "--json", out])
        self.assertEqual(code, 0, err)
        cases = {(c["params"]["nvlink_domain"], c["params"]["cta_policy"]): c
                 for c in load(out)["cases"]}
        self.assertEqual(len(cases), 4)
        self.assertEqual(cases[(72, "default")]["config"]["nvlink_domain"], 72)
        # Trays of 4 on their own NVLink: the gradient reduction (DP x CP, 4 ranks 4 apart) and
        # the PP neighbours leave the domain and wait on the NICs.
        dp = {d: cases[(d, "default")]["breakdown_ms"]["dp_exposed"] for d in (72, 8)}
        self.assertGreater(dp[8], 3 * dp[72])
        # Zero SMs for the all-gathers: the layers' GEMMs run faster (compute falls).
        compute = {p: cases[(72, p)]["breakdown_ms"]["compute"] for p in ("default", "zero")}
        self.assertLess(compute["zero"], compute["default"])

    def test_a_node_sized_domain_is_not_named_in_the_config(self):
        out = self.path("h100.json")
        code, _, err = run(["step"] + SIM + ["--model", "llama31_70b", "--cluster", "dgx_h100",
                                             "--gpus", "64", "--tp", "4", "--pp", "4", "--vp", "5",
                                             "--cp", "2", "--gbs", "128", "--seq", "8192",
                                             "--layers", "20", "--json", out])
        self.assertEqual(code, 0, err)
        self.assertNotIn("nvlink_domain", load(out)["cases"][0]["config"])
        code, _, err = run(["step"] + SIM + ["--model", "llama31_70b", "--cluster", "dgx_h100",
                                             "--gpus", "64", "--tp", "4", "--pp", "4",
                                             "--nvlink-domain", "12", "--json", out])
        self.assertEqual(code, 2, err)
        self.assertIn("--nvlink-domain 12", err)


class PublishedB200Step(TempDirTest):
    # The published B200 rows themselves are held (or reported) at their recipes' settings by
    # tests/e2e/test_calibrate.py from configs/calibration/published_steps.json (docs/CALIBRATION.md
    # §3.7-§3.8); these tests check the mechanisms on the 8B row's layout (DP 8, GBS 128, MBS 2).
    LLAMA_8B = ["--model", "llama3_8b", "--cluster", "dgx_b200", "--gpus", "8", "--tp", "1",
                "--pp", "1", "--gbs", "128", "--mbs", "2", "--seq", "8192", "--dtype", "fp8"]

    def step(self, args, name):
        out = self.path(name + ".json")
        code, _, err = run(["step"] + SIM + args + ["--json", out])
        self.assertEqual(code, 0, err)
        return load(out)["cases"][0]

    # Current scaling's amax and cast passes (TE's FP8 Current Scaling guide) cost the 8B step
    # HBM time that delayed scaling does not pay; the case says which recipe it ran.
    def test_llama3_8b_current_scaling_pays_its_casts(self):
        current = self.step(self.LLAMA_8B + ["--fp8-recipe", "current"], "current")
        delayed = self.step(self.LLAMA_8B, "delayed")
        self.assertEqual(current["config"]["fp8_recipe"], "current")
        self.assertEqual(delayed["config"]["fp8_recipe"], "delayed")
        self.assertGreater(current["step_ms"]["median"], 1.03 * delayed["step_ms"]["median"])

    def test_a_bad_recipe_names_the_flag(self):
        code, _, err = run(["step"] + SIM + self.LLAMA_8B + ["--fp8-recipe", "hybrid"])
        self.assertEqual(code, 2, err)
        self.assertIn("--fp8-recipe", err)


class EpDispatchers(TempDirTest):
    # deepseek-ai/DeepEP hybrid-ep docs/README_Hybrid-EP.md, 8x B200 (docs/MOE.md §7.1): algbw.
    GIVEN = [(["hybridep", "--ctas", "16", "--ep-dtype", "fp8"], 410),
             (["hybridep", "--ctas", "16"], 536),
             (["hybridep", "--ctas", "16", "--combine"], 531),
             (["deepep", "--ctas", "48", "--ep-dtype", "fp8"], 554),
             (["deepep", "--ctas", "48"], 646),
             (["deepep", "--ctas", "48", "--combine"], 586)]

    def test_one_exchange_per_given_point_within_10_percent(self):
        for args, published in self.GIVEN:
            out = self.path("x.json")
            code, _, err = run(["coll"] + SIM + ["--gpu", "b200", "--op", "all_to_all",
                                                 "--dispatcher"] + args + ["--json", out])
            self.assertEqual(code, 0, err)
            doc = load(out)
            self.assertTrue(doc["simulated"])
            self.assertEqual(doc["config"]["dispatch"]["dispatcher"], args[0])
            model = doc["rows"][0]["algbw_gbps"]
            self.assertLessEqual(abs(model / published - 1), 0.10, (args, model))

    def test_bad_dispatch_flags_exit_2_naming_the_flag(self):
        for args, words in [(["--gpu", "h100_sxm", "--op", "all_to_all"], "h100_sxm.json"),
                            (["--gpu", "b200", "--op", "all_gather"], "--op all_to_all"),
                            (["--gpu", "b200", "--op", "all_to_all", "--bytes", "1MiB"], "--bytes"),
                            (["--gpu", "b200", "--op", "all_to_all", "--experts", "60"],
                             "--experts 60")]:
            code, _, err = run(["coll"] + SIM + args + ["--dispatcher", "deepep"])
            self.assertEqual(code, 2, (args, err))
            self.assertIn(words, err)


class MegatronFsdp(TempDirTest):
    # Megatron-Bridge 26.04.01 (docs/FSDP.md §3): Llama 3 70B, 64 GPUs, TP 1 PP 1, Megatron-FSDP,
    # GBS 256 MBS 2 seq 8192 fp8. The published rows are held or reported at their recipes'
    # settings by tests/e2e/test_calibrate.py (configs/calibration/published_steps.json).
    def test_llama3_70b_fsdp_on_gb300_shards_the_weights_and_is_named_in_the_config(self):
        out = self.path("fsdp.json")
        code, _, err = run(["step"] + SIM + ["--model", "llama3_70b", "--cluster", "gb300_nvl72",
                                             "--gpus", "64", "--tp", "1", "--pp", "1", "--gbs",
                                             "256", "--mbs", "2", "--seq", "8192", "--dtype", "fp8",
                                             "--fsdp", "on,off", "--allow-oom", "--json", out])
        self.assertEqual(code, 0, err)
        cases = load(out)["cases"]
        on = [c for c in cases if c["config"].get("fsdp")]
        off = [c for c in cases if "fsdp" not in c["config"]]
        self.assertEqual((len(on), len(off)), (1, 1))
        self.assertLess(on[0]["memory_gib"]["weights"], off[0]["memory_gib"]["weights"] / 10)

    # The recipes' settings (docs/FSDP.md §5.3) fit in the memory CUDA reports on each GPU
    # (nvidia-smi's memory.total, docs/FSDP.md §5.4), not in the datasheet's GB: without the 40
    # offloaded layers the GB200 row does not, so the offload is what makes it fit.
    def test_llama3_70b_fsdp_recipes_fit_in_what_cuda_reports(self):
        recipe = ["--model", "llama3_70b", "--gpus", "64", "--tp", "1", "--pp", "1", "--gbs",
                  "256", "--mbs", "2", "--seq", "8192", "--dtype", "fp8", "--fsdp", "on",
                  "--fp8-param-gather", "on", "--fp8-recipe", "current",
                  "--cross-entropy-fusion-impl", "te", "--set", "grad_reduce_in_fp32=off",
                  "--allow-oom"]
        for cluster, layers in [("gb200_nvl72", "0,40"), ("gb300_nvl72", "20")]:
            out = self.path(cluster + ".json")
            code, _, err = run(["step"] + SIM + recipe + ["--cluster", cluster,
                                                          "--cpu-offload-layers", layers,
                                                          "--json", out])
            self.assertEqual(code, 0, err)
            doc = load(out)
            fits = {c["params"]["cpu_offload_layers"]: c["fits"] for c in doc["cases"]}
            if cluster == "gb200_nvl72":
                self.assertEqual(fits, {0: False, 40: True}, fits)
            else:
                self.assertEqual(fits, {20: True}, fits)


class BlockScaledDtypes(TempDirTest):
    def test_nvfp4_runs_on_b300_faster_than_mxfp8(self):
        times = {}
        for dtype in ("mxfp8", "nvfp4"):
            out = self.path(dtype + ".json")
            code, _, err = run(["pair"] + SIM + ["--gpu", "b300", "--gemm", "8192x8192x8192",
                                                 "--dtype", dtype, "--bytes", "1MiB", "--ranks",
                                                 "1", "--json", out])
            self.assertEqual(code, 0, err)
            times[dtype] = load(out)["cases"][0]["compute_ms"]["median"]
        self.assertLess(times["nvfp4"], times["mxfp8"])


class FusedAttentionRates(TempDirTest):
    """docs/CALIBRATION.md §2.13: the Blackwell files' fused-attention efficiencies come from
    cuDNN's measured rates; GB300 (Blackwell Ultra, twice the exponential throughput) runs the
    same attention faster than GB200 at the same bf16 peak, the forward (softmax-heavy) more than
    the backward. Checked on the step's timeline: each layer's attn_fwd / attn_bwd op."""

    ARGS = ["--model", "llama3_8b", "--gpus", "8", "--tp", "1", "--pp", "1", "--gbs", "8",
            "--mbs", "1", "--seq", "8192", "--dtype", "fp8"]

    def attention_ops(self, gpu):
        trace = self.path(gpu + ".trace.json")
        code, _, err = run(["step"] + SIM + self.ARGS + ["--cluster", gpu + "_nvl72",
                                                         "--trace", trace])
        self.assertEqual(code, 0, err)
        ops = {}
        for e in load(trace)["traceEvents"]:
            slot = e.get("args", {}).get("slot")
            if e.get("ph") == "X" and slot in ("attn_fwd", "attn_bwd"):
                ops.setdefault(slot, []).append(e)
        self.assertEqual({k: len(v) for k, v in ops.items()}, {"attn_fwd": 32, "attn_bwd": 32})
        return ops

    @staticmethod
    def gpu_file(gpu):
        with open(os.path.join(SRC, "configs", "gpus", gpu + ".json")) as f:
            return json.load(f)

    def test_gb300_runs_each_attention_op_faster_by_its_measured_rate(self):
        gb200, gb300 = self.attention_ops("gb200"), self.attention_ops("gb300")
        f200, f300 = self.gpu_file("gb200"), self.gpu_file("gb300")
        self.assertEqual(f200["peak_tflops"]["bf16"]["value"], f300["peak_tflops"]["bf16"]["value"])
        ratios = {}
        for slot, key in (("attn_fwd", "fwd"), ("attn_bwd", "bwd")):
            # The same op (same FLOPs) on both; the fastest instance is the one nothing slowed.
            self.assertEqual({e["args"]["flops"] for e in gb200[slot]},
                             {e["args"]["flops"] for e in gb300[slot]})
            ratio = min(e["dur"] for e in gb200[slot]) / min(e["dur"] for e in gb300[slot])
            eff = (f300["sim"]["flash_attention_efficiency"][key]["value"] /
                   f200["sim"]["flash_attention_efficiency"][key]["value"])
            self.assertAlmostEqual(ratio, eff, delta=0.005 * eff, msg=slot)
            # ... and at the file's rate: FLOPs / (peak x efficiency x sustained clock).
            op = min(gb300[slot], key=lambda e: e["dur"])
            rate = (f300["peak_tflops"]["bf16"]["value"] * 1e12 *
                    f300["sim"]["flash_attention_efficiency"][key]["value"] *
                    f300["sim"]["sustained_clock_factor"]["value"])
            self.assertAlmostEqual(op["dur"], op["args"]["flops"] / rate * 1e6,
                                   delta=0.01 * op["dur"], msg=slot)
            ratios[key] = ratio
        self.assertGreater(ratios["fwd"], ratios["bwd"])
        self.assertGreater(ratios["bwd"], 1.0)


class Fp8DotProductAttention(TempDirTest):
    """docs/ARCHITECTURE.md §3.1, docs/CALIBRATION.md §2.15: --fp8-dot-product-attention runs the
    attention core as cuDNN's fp8 kernels at the GPU file's `.mxfp8` / `.fp8` rates, with TE's
    casts on the compute stream before each kernel; refused where TE runs no fp8 attention."""

    ARGS = ["--model", "llama3_8b", "--gpus", "8", "--tp", "1", "--pp", "1", "--gbs", "8",
            "--mbs", "1", "--seq", "8192", "--cluster", "gb200_nvl72"]

    def trace(self, extra, name):
        trace, out = self.path(name + ".trace.json"), self.path(name + ".json")
        code, _, err = run(["step"] + SIM + self.ARGS + extra + ["--trace", trace, "--json", out])
        self.assertEqual(code, 0, err)
        events = [e for e in load(trace)["traceEvents"] if e.get("ph") == "X"]
        return events, load(out)["cases"][0]

    def test_mxfp8_kernels_run_at_the_files_rate_after_their_casts(self):
        gpu = FusedAttentionRates.gpu_file("gb200")
        off, off_case = self.trace(["--dtype", "mxfp8"], "off")
        on, on_case = self.trace(["--dtype", "mxfp8", "--fp8-dot-product-attention", "on"], "on")
        self.assertNotIn("fp8_dot_product_attention", off_case["config"])
        self.assertIs(on_case["config"]["fp8_dot_product_attention"], True)
        slot = lambda e: e.get("args", {}).get("slot")
        self.assertFalse([e for e in off if "fp8_dpa" in (slot(e) or "")])
        for kernel, cast, key in (("attn_fwd", "qkv_fp8_dpa_cast", "fwd"),
                                  ("attn_bwd", "proj_fp8_dpa_dout_cast", "bwd")):
            kernels = [e for e in on if slot(e) == kernel]
            casts = [e for e in on if slot(e) == cast]
            self.assertEqual((len(kernels), len(casts)), (32, 32), kernel)
            # Each cast runs on the kernel's stream and ends before it starts.
            for c, k in zip(sorted(casts, key=lambda e: e["ts"]), sorted(kernels, key=lambda e: e["ts"])):
                self.assertEqual(c["tid"], k["tid"])
                self.assertLessEqual(c["ts"] + c["dur"], k["ts"] + 1e-3)
            # The kernel at FLOPs / (bf16 peak x mxfp8 efficiency x sustained clock).
            op = min(kernels, key=lambda e: e["dur"])
            rate = (gpu["peak_tflops"]["bf16"]["value"] * 1e12 *
                    gpu["sim"]["flash_attention_efficiency"]["mxfp8"][key]["value"] *
                    gpu["sim"]["sustained_clock_factor"]["value"])
            self.assertAlmostEqual(op["dur"], op["args"]["flops"] / rate * 1e6,
                                   delta=0.01 * op["dur"], msg=kernel)
            bf16 = min((e for e in off if slot(e) == kernel), key=lambda e: e["dur"])
            ratio = bf16["dur"] / op["dur"]
            want = (gpu["sim"]["flash_attention_efficiency"]["mxfp8"][key]["value"] /
                    gpu["sim"]["flash_attention_efficiency"][key]["value"])
            self.assertAlmostEqual(ratio, want, delta=0.01 * want, msg=kernel)

    def test_refused_where_transformer_engine_runs_no_fp8_attention(self):
        flag = ["--fp8-dot-product-attention", "on"]
        shape = ["--gpus", "8", "--tp", "1", "--pp", "1", "--gbs", "8", "--mbs", "1"]
        for extra, why in (
                (["--model", "llama3_8b", "--cluster", "gb200_nvl72", "--dtype", "bf16"],
                 "fp8 or mxfp8 recipe"),
                (["--model", "llama3_8b", "--cluster", "dgx_h100", "--dtype", "fp8",
                  "--fp8-recipe", "current"], "compute capability 10"),
                (["--model", "gpt_22b", "--cluster", "dgx_h100", "--dtype", "fp8"],
                 "fused (cuDNN) backend")):
            code, _, err = run(["step"] + SIM + shape + extra + flag)
            self.assertEqual(code, 2, err)
            self.assertIn("--fp8-dot-product-attention", err)
            self.assertIn(why, err)


if __name__ == "__main__":
    unittest.main()
