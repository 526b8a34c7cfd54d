// Megatron-Core's recompute_modules (docs/MEMORY.md §2.1): each module the case names runs its
// forward ops again in the backward, before the backward GEMM that needs them, and the memory
// model drops the tensors those ops make; the refusals name the flag.
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

}  // namespace
}  // namespace ob
