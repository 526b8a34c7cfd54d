"""Bad input: exit 2, a message naming the file (or flag) and the field, and no result file."""
import json
import os
import unittest

from e2e_common import SRC, TempDirTest, run

PAIR = ["pair", "--backend", "sim", "--gemm", "4096x4096x4096", "--coll", "all_gather",
        "--bytes", "16MiB", "--ranks", "8"]

GOOD_SCENARIO = {
    "scenario": "layer", "gpu": "h100_sxm", "model": "gpt3_175b",
    "parallel": {"tp": 4, "sequence_parallel": True},
    "overlap": {"preset": "userbuffers_bf16_h100_h12288_tp4_mbs1_seqlen2048"},
    "sweep": {"cdmc": [1], "method": ["preset"], "sm_margin": [0]},
}


def scenario(**changes):
    sc = json.loads(json.dumps(GOOD_SCENARIO))
    for path, value in changes.items():
        node = sc
        keys = path.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if value is DELETE:
            node.pop(keys[-1])
        else:
            node[keys[-1]] = value
    return sc


DELETE = object()


class BadInputs(TempDirTest):
    def expect_usage_error(self, args, *needles):
        out_json = self.path("out.json")
        rc, out, err = run(list(args) + (["--json", out_json] if args[0] in ("run", "pair", "coll") else []))
        self.assertEqual(rc, 2, f"args={args}\nstdout={out}\nstderr={err}")
        for n in needles:
            self.assertIn(n, err, f"args={args}: message should name {n!r}:\n{err}")
        self.assertFalse(os.path.exists(out_json), "no result file on bad input")
        self.assertFalse([f for f in os.listdir(self.tmp) if ".tmp" in f], "no temporary left behind")
        self.assertNotIn("Traceback", err)
        return err

    def run_scenario(self, sc, *needles):
        p = self.write_json("scenario.json", sc)
        return self.expect_usage_error(["run", "--backend", "sim", "--config", p], p, *needles)

    # Scenario files.
    def test_invalid_json(self):
        p = self.write_json("scenario.json", '{"scenario": "layer", ')
        self.expect_usage_error(["run", "--config", p], p, "invalid JSON")

    def test_unknown_key(self):
        self.run_scenario(scenario(parallel__tpp=4), "parallel.tpp", "unknown key")

    def test_unknown_top_level_key(self):
        self.run_scenario(scenario(sweeep={}), "sweeep")

    def test_negative_tp(self):
        self.run_scenario(scenario(parallel__tp=-4), "parallel.tp", "positive integer")

    def test_zero_iters(self):
        self.run_scenario(scenario(measure={"iters": 0}), "measure.iters")

    def test_unknown_gpu(self):
        self.run_scenario(scenario(gpu="h900"), "gpu", "h900")

    def test_unknown_model(self):
        self.run_scenario(scenario(model="gpt5"), "model", "gpt5")

    def test_unknown_preset(self):
        self.run_scenario(scenario(overlap__preset="userbuffers_nope"), "overlap.preset", "userbuffers_nope")

    def test_impossible_layout(self):
        # 96 heads do not split over 7 TP ranks.
        self.run_scenario(scenario(parallel__tp=7), "tp", "not divisible")

    def test_bad_axis_value(self):
        self.run_scenario(scenario(sweep__cdmc=[0]), "sweep.cdmc", "out of range")

    def test_bad_order(self):
        self.run_scenario(scenario(sweep__order=["sideways"]), "sweep.order", "sideways")

    def test_layernorm_margin_swallows_gpu(self):
        self.run_scenario(scenario(layernorm_sm_margin=200), "layernorm_sm_margin")

    def test_sm_margin_in_sweep_names_file_and_case(self):
        self.run_scenario(scenario(sweep__sm_margin=[132]), "sm_margin=132", "leaves no SM")

    def test_producer_not_a_number(self):
        self.expect_usage_error(PAIR + ["--comm-waits-on-producer", "nan"], "comm-waits-on-producer")

    def test_sweep_axis_not_a_list(self):
        self.run_scenario(scenario(sweep__sm_margin=16), "sweep.sm_margin")

    def test_model_file_with_negative_hidden(self):
        m = {"display_name": "bad", "hidden_size": -5, "ffn_hidden_size": 4, "num_attention_heads": 1,
             "seq_length": 8, "num_layers": 1}
        mp = self.write_json("model.json", m)
        sp = self.write_json("scenario.json", scenario(model=mp))
        # The message names the file that holds the bad value: the model file.
        self.expect_usage_error(["run", "--backend", "sim", "--config", sp], mp, "hidden_size", "-5")

    def test_moe_model_file_errors_name_the_field(self):
        base = {"display_name": "moe", "hidden_size": 1024, "ffn_hidden_size": 4096,
                "num_attention_heads": 8, "seq_length": 2048, "num_layers": 4, "vocab_size": 32000}
        bad = [
            ({"moe_router_topk": 2}, "moe_router_topk", "needs num_moe_experts"),
            ({"num_moe_experts": 8, "moe_router_topk": 9}, "moe_router_topk", "9"),
            ({"num_moe_experts": 8, "moe_router_topk": 2, "moe_layer_freq": [1, 0]},
             "moe_layer_freq", "one entry per layer (4)"),
            ({"num_moe_experts": 8, "moe_router_topk": 2, "moe_layer_freq": [1, 0, 2, 1]},
             "moe_layer_freq", "entry 2"),
            ({"num_moe_experts": 8, "moe_router_topk": 2, "moe_expert_count": 8},
             "moe_expert_count", "unknown key"),
            ({"kv_lora_rank": 512}, "kv_lora_rank", "multi_latent_attention"),
            ({"window_attn_skip_freq": 2}, "window_attn_skip_freq", "needs window_size"),
        ]
        for extra, *needles in bad:
            mp = self.write_json("model.json", dict(base, **extra))
            sp = self.write_json("scenario.json", scenario(model=mp))
            self.expect_usage_error(["run", "--backend", "sim", "--config", sp], mp, *needles)

    def test_mla_model_is_refused_by_the_layer_scenario(self):
        # step plans MoE, MLA, windows and MTP (docs/MOE.md §5, §14); the layer planner does not.
        sp = self.write_json("scenario.json", scenario(model="deepseek_v3"))
        self.expect_usage_error(["run", "--backend", "sim", "--config", sp], sp,
                                "multi-latent attention")

    def test_gpu_file_missing_source(self):
        with open(os.path.join(SRC, "configs", "gpus", "h100_sxm.json")) as f:
            g = json.load(f)
        del g["sm_count"]["source"]
        gp = self.write_json("gpu.json", g)
        self.expect_usage_error(PAIR + ["--gpu", gp], gp, "sm_count.source")

    # Command-line values.
    def test_malformed_bytes(self):
        args = list(PAIR)
        args[args.index("16MiB")] = "16QiB"
        self.expect_usage_error(args, "--bytes", "16QiB")

    def test_zero_bytes(self):
        args = list(PAIR)
        args[args.index("16MiB")] = "0"
        self.expect_usage_error(args, "--bytes")

    def test_malformed_gemm(self):
        args = list(PAIR)
        args[args.index("4096x4096x4096")] = "4096x4096"
        self.expect_usage_error(args, "--gemm")

    def test_unknown_collective(self):
        args = list(PAIR)
        args[args.index("all_gather")] = "broadcast"
        self.expect_usage_error(args, "--coll", "broadcast", "all_to_all")

    def test_sm_margin_swallows_gpu(self):
        self.expect_usage_error(PAIR + ["--sm-margin", "132"], "sm-margin")

    def test_bad_set_key(self):
        self.expect_usage_error(["run", "--backend", "sim", "--set", "cdmcc=1"], "--set", "cdmcc")

    def test_unknown_flag(self):
        self.expect_usage_error(PAIR + ["--frobnicate"], "frobnicate")

    def test_resolve_unknown_comm_overlap_key(self):
        p = self.write_json("bridge.json", {"model": {"tensor_model_parallel_size": 2},
                                            "comm_overlap": {"tp_comm_overlap": True,
                                                             "tp_comm_overlapp": True}})
        self.expect_usage_error(["resolve", "--input", p], "tp_comm_overlapp")

    def test_compare_non_result(self):
        p = self.write_json("x.json", {"hello": 1})
        self.expect_usage_error(["compare", p, p], p)


if __name__ == "__main__":
    unittest.main(verbosity=2)
