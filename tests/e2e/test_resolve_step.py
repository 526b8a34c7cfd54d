"""`resolve` and `step --bridge-config` end to end (docs/BRIDGE_RULES.md §12): the settings a
Bridge config decides beyond layout and overlap are listed by `resolve` with where each came
from, and a step made from the config runs with them (its --json cases' config)."""
import json
import unittest

from e2e_common import TempDirTest, load, run, validate

# GPT-3 175B's shape on one 8-GPU node, TP 4, with the settings `step` takes.
DENSE = {
    "model": {"tensor_model_parallel_size": 4, "sequence_parallel": True, "hidden_size": 12288,
              "seq_length": 2048, "num_attention_heads": 96,
              "gradient_accumulation_fusion": False,
              "cross_entropy_fusion_impl": "te",
              "cpu_offloading": True, "cpu_offloading_num_layers": 1},
    "comm_overlap": {"tp_comm_overlap": True},
    "ddp": {"use_distributed_optimizer": True, "grad_reduce_in_fp32": True},
    "mixed_precision": {"grad_reduce_in_fp32": False},
    "optimizer": {"use_distributed_optimizer": True, "use_precision_aware_optimizer": True,
                  "exp_avg_dtype": "bf16", "exp_avg_sq_dtype": "bf16"},
    "platform": {"gpu": "h100", "num_gpus": 8},
}

# An expert-parallel layout's MoE settings: the flex dispatcher with HybridEP, the all-to-all
# overlap and delayed wgrad set on comm_overlap, selective recomputation.
MOE = {
    "model": {"tensor_model_parallel_size": 1,
              "moe_token_dispatcher_type": "flex", "moe_flex_dispatcher_backend": "hybridep",
              "recompute_granularity": "selective", "recompute_modules": ["layernorm", "moe"]},
    "comm_overlap": {"tp_comm_overlap": False, "overlap_moe_expert_parallel_comm": True,
                     "delay_wgrad_compute": True},
    "ddp": {"use_distributed_optimizer": True},
    "platform": {"gpu": "h100", "num_gpus": 8},
}


class ResolveStep(TempDirTest):
    def resolve(self, cfg):
        out, _ = self.assertRuns(["resolve", "--input", self.write_json("in.json", cfg)])
        return json.loads(out)

    def step_case(self, cfg, args):
        path = self.write_json("bridge.json", cfg)
        self.assertRuns(["step", "--backend", "sim", "--cluster", "dgx_h100", "--bridge-config",
                         path, "--allow-oom", "--json", self.path("s.json")] + args)
        doc = load(self.path("s.json"))
        validate(doc, "step_v1.schema.json")
        self.assertEqual(len(doc["cases"]), 1)
        return doc["cases"][0]["config"]

    def test_dense_settings_reach_the_step(self):
        doc = self.resolve(DENSE)
        self.assertEqual(doc["errors"], [])
        step = doc["step"]
        self.assertEqual(step["grad_reduce_in_fp32"],
                         {"value": "off", "from": "mixed_precision.grad_reduce_in_fp32"})
        self.assertEqual(step["grad_accum_fusion"]["value"], "off")
        self.assertEqual(step["cross_entropy_fusion_impl"]["value"], "te")
        self.assertEqual(step["cpu_offload_layers"]["value"], "1")
        self.assertEqual(step["exp_avg_dtype"]["value"], "bf16")
        # ddp's true is replaced by mixed_precision's false, and said so.
        self.assertIn("ddp_field_overwritten", [w["code"] for w in doc["warnings"]])
        c = self.step_case(DENSE, ["--model", "gpt3_175b", "--layers", "4", "--gbs", "8"])
        self.assertEqual((c["tp"], c["gpus"]), (4, 8))
        self.assertEqual(c["grad_reduce_in_fp32"], False)
        self.assertEqual(c["grad_accum_fusion"], False)
        self.assertEqual(c["cross_entropy_fusion_impl"], "te")
        self.assertEqual(c["cpu_offload_layers"], 1)
        self.assertEqual(c["exp_avg_dtype"], "bf16")

    def test_moe_settings_reach_the_step(self):
        doc = self.resolve(MOE)
        self.assertEqual(doc["errors"], [])
        step = doc["step"]
        self.assertEqual(step["moe_dispatcher"]["value"], "hybridep")
        self.assertEqual(step["moe_a2a_overlap"],
                         {"value": "on", "from": "comm_overlap.overlap_moe_expert_parallel_comm"})
        self.assertEqual(step["delay_wgrad"]["value"], "on")
        self.assertEqual(step["recompute"]["value"], "selective")
        self.assertEqual(step["recompute_modules"]["value"], "layernorm")
        # "moe" is not planned by step: listed as not modelled, not dropped silently.
        self.assertTrue(any(w["code"] == "not_modelled" and "moe not planned" in w["message"]
                            for w in doc["warnings"]))
        # Checked against the schema too: a MoE step's diagnosis causes carry the "ep" dimension.
        c = self.step_case(MOE, ["--model", "qwen3_30b_a3b", "--layers", "2", "--gbs", "16",
                                 "--ep", "8"])
        e = c["experts"]
        self.assertEqual((e["moe_dispatcher"], e["moe_a2a_overlap"], e["delay_wgrad"]),
                         ("hybridep", True, True))
        self.assertEqual(c["recompute"], "selective")
        self.assertEqual(c["recompute_modules"], ["layernorm"])

    # fp8_dot_product_attention: the model's unless a mixed_precision object is given, whose
    # value Bridge writes over the model's (docs/BRIDGE_RULES.md §12); the step runs with it.
    def test_fp8_dot_product_attention_reaches_the_step(self):
        cfg = dict(DENSE, model=dict(DENSE["model"], fp8_dot_product_attention=True),
                   mixed_precision={"grad_reduce_in_fp32": False, "fp8_dot_product_attention": True})
        step = self.resolve(cfg)["step"]
        self.assertEqual(step["fp8_dot_product_attention"],
                         {"value": "on", "from": "mixed_precision.fp8_dot_product_attention"})
        c = self.step_case(cfg, ["--model", "gpt3_175b", "--layers", "4", "--gbs", "8",
                                 "--dtype", "fp8"])
        self.assertIs(c["fp8_dot_product_attention"], True)
        # The section without the field: MixedPrecisionConfig's default false wins, and is said.
        cfg = dict(DENSE, model=dict(DENSE["model"], fp8_dot_product_attention=True))
        doc = self.resolve(cfg)
        self.assertEqual(doc["step"]["fp8_dot_product_attention"]["value"], "off")
        self.assertIn("model_field_overwritten", [w["code"] for w in doc["warnings"]])
        # Neither set: nothing carried.
        self.assertNotIn("fp8_dot_product_attention", self.resolve(DENSE)["step"])

    def test_a_setting_megatron_rejects_refuses_the_step(self):
        cfg = dict(DENSE, optimizer={"use_distributed_optimizer": True, "exp_avg_dtype": "bf16"})
        rc, out, _ = run(["resolve", "--input", self.write_json("bad.json", cfg)])
        self.assertEqual(rc, 2)
        self.assertIn("step_setting_invalid", out)
        rc, _, err = run(["step", "--backend", "sim", "--model", "gpt3_175b", "--layers", "4",
                          "--bridge-config", self.path("bad.json")])
        self.assertEqual(rc, 2)
        self.assertIn("optimizer.exp_avg_dtype", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
