// Multi-latent attention, sliding-window attention and multi-token prediction in the step
// planner (docs/MOE.md §14): MLA's GEMM shapes and TP split, a windowed layer's shorter attention
// core on the timeline, the MTP layer's ops on the last stage, their memory and model FLOPs.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "analysis/step_metrics.hpp"
#include "model/model_spec.hpp"
#include "model/workload.hpp"
#include "plan/memory_model.hpp"
#include "run/step_run.hpp"
#include "sim/simulator.hpp"
#include "step_test_util.hpp"

namespace ob {
namespace {

using test::simulate;
using test::timeline;

step_scenario scenario(const std::string& model, std::vector<sweep_axis> axes) {
  step_scenario sc;
  sc.model = model;
  sc.cluster = "dgx_h100";
  sc.allow_oom = true;
  sc.axes = std::move(axes);
  return sc;
}

// DeepSeek-V3 at TP 2 with sequence parallelism: the down-projections run whole on each rank's
// half of the tokens, the up-projections and the output projection split their heads over TP.
TEST(Mla, LayerGemmShapesAndTpSplit) {
  const model_spec m = load_model_spec("deepseek_v3");
  parallel_layout l;
  l.tp = 2;
  const layer_workload w = make_layer_workload(m, l);
  const std::int64_t T = 4096, h = 7168, heads = 128;
  EXPECT_THROW(w.gemm("qkv_fprop"), std::out_of_range);
  const auto shape = [&](const char* slot) {
    const gemm_params& g = w.gemm(slot).gemm;
    return std::tuple{g.m, g.k, g.n};
  };
  EXPECT_EQ(shape("q_down_fprop"), std::tuple(T / 2, h, std::int64_t{1536}));
  EXPECT_EQ(shape("kv_down_fprop"), std::tuple(T / 2, h, std::int64_t{512 + 64}));
  EXPECT_EQ(shape("q_up_fprop"), std::tuple(T, std::int64_t{1536}, heads * (128 + 64) / 2));
  EXPECT_EQ(shape("kv_up_fprop"), std::tuple(T, std::int64_t{512}, heads * (128 + 128) / 2));
  EXPECT_EQ(shape("proj_fprop"), std::tuple(T, heads * 128 / 2, h));
  EXPECT_EQ(shape("kv_up_wgrad"), std::tuple(std::int64_t{512}, T, heads * 256 / 2));
  EXPECT_EQ(shape("q_down_wgrad"), std::tuple(h, T / 2, std::int64_t{1536}));
  // Only the up-projections gather over TP: the latents (and the rotary key), not the hidden.
  EXPECT_EQ(w.gemm("q_down_fprop").comm_bytes, 0u);
  EXPECT_EQ(w.gemm("q_up_fprop").relation, comm_relation::ag_input);
  EXPECT_EQ(w.gemm("q_up_fprop").comm_bytes, static_cast<std::uint64_t>(T * 1536 * 2));
  EXPECT_EQ(w.gemm("kv_up_fprop").comm_bytes, static_cast<std::uint64_t>(T * 576 * 2));
  EXPECT_EQ(w.gemm("q_up_wgrad").relation, comm_relation::independent_rs);
  // The core: QK^T 192 wide and PV 128 wide over half the sequence (causal), 64 local heads.
  int cores = 0;
  for (const layer_step& s : w.steps) {
    const auto* e = std::get_if<layer_elementwise>(&s);
    if (!e || e->slot != "attn_fwd") continue;
    ++cores;
    EXPECT_DOUBLE_EQ(e->params.flops, 2.0 * T * (T / 2.0) * 64 * (192 + 128));
  }
  EXPECT_EQ(cores, 1);
}

// On the step's timeline the MLA layer's ops run in order on the compute stream, the gather of
// the latents before the up-projection it feeds.
TEST(Mla, StepPlansTheLatentProjections) {
  const timeline t = simulate(
      scenario("deepseek_v3", {{"gpus", {"2"}}, {"tp", {"2"}}, {"layers", {"1"}}, {"gbs", {"1"}}}));
  const std::string L = "c0.mb0.L0.";
  EXPECT_EQ(t.find(0, L + "qkv_fprop"), nullptr);
  EXPECT_EQ(t.named(0, L + "q_up_fprop.ag").as<collective_params>().bytes, 4096ull * 1536 * 2);
  EXPECT_GE(t.at(0, L + "q_up_fprop").start_us, t.at(0, L + "q_up_fprop.ag").end_us);
  EXPECT_GE(t.at(0, L + "q_up_fprop").start_us, t.at(0, L + "q_down_fprop").end_us);
  EXPECT_GE(t.at(0, L + "attn_fwd").start_us, t.at(0, L + "kv_up_fprop").end_us);
  EXPECT_GT(t.length(0, L + "kv_down_dgrad"), 0);
}

// GPT-OSS alternates a 128-token window (layer 0) with full attention (layer 1): the windowed
// core attends ~126 keys per query against 2048 (half of 4096); the fused kernel computes the
// 252 its key tiles hold (docs/MOE.md §14.3), and runs that much shorter.
TEST(SlidingWindow, WindowedLayerAttentionIsShorterByTheKeyRatio) {
  const model_spec m = load_model_spec("gpt_oss_120b");
  EXPECT_TRUE(m.windowed_layer(0));
  EXPECT_FALSE(m.windowed_layer(1));
  const double keys = (128.0 * 129 / 2 + (4096 - 128) * 128.0) / 4096;
  EXPECT_DOUBLE_EQ(attended_keys(m, true), keys);
  EXPECT_DOUBLE_EQ(attended_keys(m, false), 2048);
  const double tiled = computed_keys(m, true);
  EXPECT_DOUBLE_EQ(tiled, 252);
  const timeline t = simulate(scenario(
      "gpt_oss_120b", {{"gpus", {"8"}}, {"ep", {"8"}}, {"layers", {"2"}}, {"gbs", {"8"}}}));
  const auto& win = t.named(0, "c0.mb0.L0.attn_fwd").as<elementwise_params>();
  const auto& full = t.named(0, "c0.mb0.L1.attn_fwd").as<elementwise_params>();
  const double sink = 2 * 4096.0 * 64;  // the sinks' FLOPs, the same in both layers
  EXPECT_DOUBLE_EQ((full.flops - sink) / (win.flops - sink), 2048 / tiled);
  EXPECT_EQ(full.bytes, win.bytes);  // both read q, k, v and write o once
  const double ratio = t.length(0, "c0.mb0.L1.attn_fwd") / t.length(0, "c0.mb0.L0.attn_fwd");
  EXPECT_GT(ratio, 3);  // fixed costs keep it under the FLOP ratio (8.1)
  EXPECT_LE(ratio, 2048 / tiled + 1e-9);
  EXPECT_LT(t.length(0, "c0.mb0.L0.attn_bwd"), t.length(0, "c0.mb0.L1.attn_bwd") / 4);
}

// DeepSeek-V3's MTP layer runs on the last stage only, after the main loss: embedding, norms,
// the eh projection, a MoE layer (its last layer is MoE), and logits and loss again.
TEST(Mtp, LastStageGainsTheMtpLayer) {
  const timeline t = simulate(
      scenario("deepseek_v3",
               {{"gpus", {"8"}}, {"pp", {"2"}}, {"ep", {"4"}}, {"layers", {"4"}}, {"gbs", {"4"}}}));
  const std::string p = "c0.mb0.";
  for (int stage : {0, 1}) {
    const bool last = stage == 1;
    EXPECT_EQ(t.find(stage, p + "mtp0.mtp_eh_proj") != nullptr, last);
    EXPECT_EQ(t.find(stage, p + "mtp0.moe_dispatch") != nullptr, last);
    EXPECT_EQ(t.find(stage, p + "mtp0.output_fprop") != nullptr, last);
    EXPECT_EQ(t.find(stage, p + "mtp0.mtp_eh_proj_wgrad") != nullptr, last);
  }
  const auto& eh = t.named(1, p + "mtp0.mtp_eh_proj").as<gemm_params>();
  EXPECT_EQ(std::tuple(eh.m, eh.k, eh.n), std::tuple(4096, 2 * 7168, 7168));
  EXPECT_GE(t.at(1, p + "mtp0.mtp_eh_proj").start_us, t.at(1, p + "loss").end_us);
  EXPECT_GE(t.at(1, p + "mtp0.q_down_fprop").start_us, t.at(1, p + "mtp0.mtp_eh_proj").end_us);
  EXPECT_GE(t.at(1, p + "mtp0.loss").start_us, t.at(1, p + "mtp0.moe_combine").end_us);
  // The backward starts with the MTP loss, the main loss's backward after the MTP layer's.
  EXPECT_GE(t.at(1, p + "loss_bwd").start_us, t.at(1, p + "mtp0.mtp_eh_proj_wgrad").end_us);
}

TEST(Mtp, LastStageHoldsItsWeightsAndActivations) {
  const model_spec m = load_model_spec("deepseek_v3");
  model_spec no_mtp = m;
  no_mtp.mtp_num_layers = 0;
  step_config c;
  c.gpus = 8;
  c.pp = 2;
  c.dp = 4;
  c.ep = 4;
  c.etp = 1;
  c.edp = 1;
  c.microbatches = 4;
  c.layers_used = 4;
  c.recompute = recompute_mode::none;
  gpu_spec gpu;
  const memory_estimate with = estimate_memory(m, gpu, c, 0);
  const memory_estimate without = estimate_memory(no_mtp, gpu, c, 0);
  EXPECT_EQ(with.stage, 1);
  EXPECT_GT(with.gib.weights, without.gib.weights);
  // One MoE layer more, its norms and projection, and the embedding's copy for the MTP input.
  const double h = 7168, experts = 256 / 4, per_expert = 3 * h * 2048;
  const double embedding = 129280.0 * h;
  const double at_least = experts * per_expert + 2 * h * h + embedding;
  EXPECT_GT((with.gib.weights - without.gib.weights) * 1024 * 1024 * 1024 / 2, at_least);
  EXPECT_GT(with.gib.activations, without.gib.activations);
}

// Megatron's num_floating_point_operations for MLA, written out here term by term for
// DeepSeek-V3 (3 dense layers then MoE, one MTP layer).
TEST(Mla, ModelFlopsFollowMegatronsMlaTerm) {
  const model_spec m = load_model_spec("deepseek_v3");
  const double B = 8, s = 4096, h = 7168, n = 128, V = 129280;
  const double q = 1536 * (h + n * 192 + 1), kv = 512 * (h + n * 256 + 1), rope = h * 64;
  const double attn = 6 * (q + kv + rope + n * 128 * h + s * n * 192 / 2 + s * n * 128 / 2);
  const double dense = 6 * h * 18432 * 3, moe = 6 * h * (8 * 2048 + 2048) * 3;
  const double layers = 61 * attn + 3 * dense + 58 * moe;
  const double mtp = attn + moe + 6 * (3 * h + 2 * h * h);
  const double expected = B * s * (layers + mtp + 6 * h * V * 2);
  EXPECT_NEAR(model_flops_per_step(m, 8, 4096, 61), expected, 1e-9 * expected);
}

// A windowed layer's core counts seq x window, the full layers' seq x seq as the dense formula.
TEST(SlidingWindow, ModelFlopsCountTheWindow) {
  const model_spec m = load_model_spec("gpt_oss_120b");
  model_spec full = m;
  full.window_size = full.window_attn_skip_freq = 0;
  const double B = 4, s = 4096, q = 64 * 64;
  const double saved = B * s * 18 * 12 * q * (s - 128);  // 18 of 36 layers windowed
  EXPECT_NEAR(model_flops_per_step(full, 4, 4096, 36) - model_flops_per_step(m, 4, 4096, 36), saved,
              1e-6 * saved);
}

TEST(Mla, LayerScenarioAndUnfusedMlaAreRefused) {
  const model_spec ds = load_model_spec("deepseek_v3");
  EXPECT_NO_THROW(require_dense_planner_support(ds, "--model", true));
  try {
    require_dense_planner_support(ds, "x.json: model");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("multi-latent attention"), std::string::npos);
  }
  // Unfused attention with a window is modelled (mask-only, test_gpt_oss_layer.cpp); with MLA not.
  model_spec g = load_model_spec("gpt_oss_120b");
  g.attention = attention_backend::unfused;
  parallel_layout l;
  EXPECT_NO_THROW(make_layer_workload(g, l, true));
  model_spec d = ds;
  d.attention = attention_backend::unfused;
  try {
    make_layer_workload(d, l);
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("attention_backend flash"), std::string::npos);
  }
}

}  // namespace
}  // namespace ob
