// Megatron-Core's recompute_modules (docs/MEMORY.md §2.1): each module the case names runs its
// forward ops again in the backward, before the backward GEMM that needs them, and the memory
// model drops the tensors those ops make; the refusals name the flag. Also the recipes' other
// memory settings: fp8 parameters and the precision-aware optimizer's bf16 moments.
#include <gtest/gtest.h>

#include <string>

#include "model/model_spec.hpp"
#include "plan/memory_model.hpp"
#include "run/step_run.hpp"
#include "step_test_util.hpp"

namespace ob {
namespace {

using test::simulate;
using test::timeline;

// DeepSeek-V3 cut to its first four layers: three dense, one MoE (moe_layer_freq).
step_scenario deepseek(const std::string& modules, const std::string& recompute = "none") {
  step_scenario sc;
  sc.model = "deepseek_v3";
  sc.cluster = "dgx_b200";
  sc.allow_oom = true;
  sc.axes = {{"gpus", {"8"}},
             {"tp", {"1"}},
             {"ep", {"8"}},
             {"layers", {"4"}},
             {"gbs", {"8"}},
             {"recompute", {recompute}},
             {"recompute_modules", {modules}}};
  return sc;
}

TEST(Recompute, MlaUpProjAndMlpRunAgainBeforeTheirBackwardGemms) {
  const timeline t = simulate(deepseek("mla_up_proj+mlp"));
  const std::string L = "c0.mb0.L0.";  // a dense layer
  // The up-projections again, after the output projection's backward, before the core's
  // backward that reads Q, K and V, and after the forward they repeat.
  const double q_up = t.at(0, L + "q_up_recompute").start_us;
  EXPECT_GE(q_up, t.at(0, L + "proj_wgrad").end_us);
  EXPECT_GE(q_up, t.at(0, L + "q_up_fprop").end_us);
  EXPECT_LE(t.at(0, L + "kv_up_recompute").end_us, t.at(0, L + "attn_bwd").start_us);
  // The dense MLP again, FC1 before FC2, all before FC2's dgrad.
  EXPECT_LE(t.at(0, L + "fc1_recompute").end_us, t.at(0, L + "fc2_recompute").start_us);
  EXPECT_LE(t.at(0, L + "fc2_recompute").end_us, t.at(0, L + "fc2_dgrad").start_us);
  EXPECT_GT(t.length(0, L + "fc1_recompute"), 0.5 * t.length(0, L + "fc1_fprop"));
  // The MoE layer has no dense MLP to recompute; the core attention is not recomputed.
  EXPECT_EQ(t.find(0, "c0.mb0.L3.fc1_recompute"), nullptr);
  EXPECT_EQ(t.find(0, L + "attn_recompute"), nullptr);
}

TEST(Recompute, MoeActAndLayernormRunBeforeTheirConsumersBackward) {
  const timeline t = simulate(deepseek("moe_act+layernorm"));
  const std::string M = "c0.mb0.L3.";
  EXPECT_LE(t.at(0, M + "moe_act_recompute").end_us, t.at(0, M + "moe_fc2_dgrad").start_us);
  EXPECT_GE(t.at(0, M + "moe_act_recompute").start_us, t.at(0, M + "moe_act").end_us);
  const std::string L = "c0.mb0.L0.";
  EXPECT_LE(t.at(0, L + "ln1_recompute").end_us, t.at(0, L + "kv_down_dgrad").start_us);
  EXPECT_LE(t.at(0, L + "ln2_recompute").end_us, t.at(0, L + "fc1_dgrad").start_us);
  EXPECT_EQ(t.find(0, "c0.mb0.L0.q_up_recompute"), nullptr);
}

// `--recompute selective` alone is Megatron's default list, core_attn: the same plan as naming it.
TEST(Recompute, SelectiveAloneIsCoreAttn) {
  const timeline a = simulate(deepseek("none", "selective"));
  const timeline b = simulate(deepseek("core_attn"));
  const std::string L = "c0.mb0.L0.";
  EXPECT_DOUBLE_EQ(a.at(0, L + "attn_recompute").start_us, b.at(0, L + "attn_recompute").start_us);
  EXPECT_EQ(a.prog.stages[0].ops.size(), b.prog.stages[0].ops.size());
}

double layer(const model_spec& m, const std::string& modules, bool moe) {
  step_scenario sc = deepseek(modules);
  step_case c = expand_step_cases(sc).front();
  c.cfg.recompute = recompute_mode::selective;
  c.cfg.ep = 8;
  c.cfg.etp = 1;
  return layer_activation_bytes(m, c.cfg, moe);
}

// Each module drops exactly its tensors, per token of the 4096-token micro-batch (bf16).
TEST(Recompute, MemoryDropsWhatEachModuleRecomputes) {
  const model_spec m = load_model_spec("deepseek_v3");
  const double tokens = 4096, h = 7168;
  const double base = layer(m, "core_attn", false);
  const double qkv = 128.0 * (2 * 192 + 128);  // heads x (2 qk_dim + v_dim)
  EXPECT_DOUBLE_EQ(base - layer(m, "core_attn+mla_up_proj", false), tokens * 2 * qkv);
  EXPECT_DOUBLE_EQ(base - layer(m, "core_attn+layernorm", false), tokens * 4 * h);
  EXPECT_DOUBLE_EQ(base - layer(m, "core_attn+mlp", false), tokens * (2 * 2 * 18432 + 2 * 18432));
  // A MoE layer stores its routed copies (topk 8): dropping the activation's output saves
  // 2 x moe_ffn_hidden per copy; mlp changes nothing there.
  const double moe = layer(m, "core_attn", true);
  EXPECT_DOUBLE_EQ(moe - layer(m, "core_attn+moe_act", true), tokens * 8 * 2 * 2048);
  EXPECT_DOUBLE_EQ(moe, layer(m, "core_attn+mlp", true));
  EXPECT_GT(moe, base);  // 8 routed copies outweigh the dense MLP
}

TEST(Recompute, RefusalsNameTheFlag) {
  const auto msg = [](step_scenario sc) { return test::resolve_message(sc); };
  EXPECT_NE(msg(deepseek("core_attn", "full")).find("--recompute-modules"), std::string::npos);
  EXPECT_NE(msg(deepseek("attn")).find("--recompute-modules"), std::string::npos);
  EXPECT_NE(msg(deepseek("moe")).find("not modelled"), std::string::npos);
  EXPECT_NE(msg(deepseek("mlp+mlp")).find("twice"), std::string::npos);
  step_scenario llama = deepseek("mla_up_proj");
  llama.model = "llama3_8b";
  llama.axes = {{"gpus", {"8"}}, {"layers", {"2"}}, {"recompute_modules", {"mla_up_proj"}}};
  EXPECT_NE(msg(llama).find("no multi-latent attention"), std::string::npos);
}

memory_estimate estimate(const std::vector<sweep_axis>& extra) {
  step_scenario sc;
  sc.model = "llama3_8b";
  sc.cluster = "dgx_b200";
  sc.allow_oom = true;
  sc.axes = {{"gpus", {"8"}}, {"dtype", {"fp8"}}, {"layers", {"2"}}};
  sc.axes.insert(sc.axes.end(), extra.begin(), extra.end());
  const step_spec spec = resolve_step(sc);
  return spec.cases.at(0).memory;
}

// Bytes per parameter: fp8 weights alone (1 instead of 2 + 1) with fp8_param_gather. With
// exp_avg_dtype bf16 and delayed-scaling fp8, TE's FusedAdam keeps the master weight as an int16
// remainder beside the bf16 weight and reads the gradients in place: 2 + 2 + 2 = 6 instead of 12
// or 16; with current scaling Megatron keeps fp32 master weights and its fp32 gradient copy:
// 4 + 2 + 2, plus 4 with 16-bit gradients (docs/MEMORY.md §1.1).
TEST(MemoryPrecision, Fp8ParamsAndBf16MomentsShrinkTheModelState) {
  const memory_estimate base = estimate({});
  const memory_estimate fp8 = estimate({{"fp8_param_gather", {"on"}}});
  EXPECT_DOUBLE_EQ(fp8.gib.weights * 3, base.gib.weights);
  EXPECT_DOUBLE_EQ(fp8.gib.optimizer, base.gib.optimizer);
  const memory_estimate moments = estimate({{"exp_avg_dtype", {"bf16"}}});
  EXPECT_DOUBLE_EQ(moments.gib.optimizer * 12, base.gib.optimizer * 6);
  const memory_estimate bf16_grads =
      estimate({{"exp_avg_dtype", {"bf16"}}, {"grad_reduce_in_fp32", {"off"}}});
  EXPECT_DOUBLE_EQ(bf16_grads.gib.optimizer, moments.gib.optimizer);
  EXPECT_DOUBLE_EQ(bf16_grads.gib.gradients * 2, moments.gib.gradients);
  const memory_estimate current =
      estimate({{"exp_avg_dtype", {"bf16"}}, {"fp8_recipe", {"current"}}});
  EXPECT_DOUBLE_EQ(current.gib.optimizer * 12, base.gib.optimizer * 8);
  const memory_estimate current_bf16_grads = estimate(
      {{"exp_avg_dtype", {"bf16"}}, {"fp8_recipe", {"current"}}, {"grad_reduce_in_fp32", {"off"}}});
  EXPECT_DOUBLE_EQ(current_bf16_grads.gib.optimizer * 12, base.gib.optimizer * 12);
  step_scenario bf16;
  bf16.model = "llama3_8b";
  bf16.axes = {{"gpus", {"8"}}, {"layers", {"2"}}, {"fp8_param_gather", {"on"}}};
  EXPECT_NE(test::resolve_message(bf16).find("--fp8-param-gather"), std::string::npos);
}

// With fp8 parameters the DP all-gather moves one byte per parameter; MXFP8 parameters are
// gathered as bf16 into the gradient buffer (Megatron-Core's param_and_grad_buffer.py) and
// quantized into their row- and column-wise MXFP8 storage on the compute stream after the
// gather, before the bucket's first layer (docs/MEMORY.md §1.1).
TEST(MemoryPrecision, Fp8ParamGatherHalvesTheParameterAllGather) {
  const auto run = [](const std::string& type, const std::string& on) {
    step_scenario sc = deepseek("none");
    sc.model = "llama3_8b";
    sc.cluster = "dgx_b200";
    sc.axes = {{"gpus", {"8"}}, {"dtype", {type}}, {"layers", {"2"}}, {"fp8_param_gather", {on}}};
    return simulate(sc);
  };
  const auto gather = [](const timeline& t) {
    for (const op& o : t.prog.stages[0].ops)
      if (o.kind() == op_kind::collective && o.slot == "param_gather")
        return o.as<collective_params>().bytes;
    return std::uint64_t{0};
  };
  const timeline fp8_off = run("fp8", "off");
  EXPECT_GT(gather(fp8_off), 0u);
  EXPECT_EQ(gather(run("fp8", "on")) * 2, gather(fp8_off));
  EXPECT_EQ(fp8_off.find(0, "c0.b0.param_quantize"), nullptr);

  const timeline mx = run("mxfp8", "on");
  EXPECT_EQ(gather(mx), gather(fp8_off));
  // Every bucket's quantization after its gather; the first one enqueued (the first layer's
  // bucket) before the first layer's forward.
  std::vector<std::string> quantized;
  for (const op& o : mx.prog.stages[0].ops)
    if (o.name.ends_with(".param_quantize")) quantized.push_back(o.name);
  ASSERT_FALSE(quantized.empty());
  for (const std::string& name : quantized) {
    const std::string bucket = name.substr(0, name.size() - std::string("param_quantize").size());
    const op& q = mx.named(0, name);
    EXPECT_EQ(q.slot, "param_gather");
    const double elems =
        static_cast<double>(mx.named(0, bucket + "param_ag").as<collective_params>().bytes) / 2;
    EXPECT_NEAR(static_cast<double>(q.as<elementwise_params>().bytes),
                elems * (2 + 2 * (1 + 1.0 / 32)), 8);
    EXPECT_GE(mx.at(0, name).start_us, mx.at(0, bucket + "param_ag").end_us) << name;
  }
  EXPECT_LE(mx.at(0, quantized.front()).end_us, mx.at(0, "c0.mb0.L0.ln1_fwd").start_us);
  EXPECT_EQ(run("mxfp8", "off").find(0, "c0.b0.param_quantize"), nullptr);
}

}  // namespace
}  // namespace ob
