// The memory model (docs/MEMORY.md): Korthikanti et al.'s per-layer activation formulas, the
// in-flight micro-batches of 1F1B and interleaved schedules, Megatron's bytes per parameter,
// and the cases that must not fit and published layouts that must.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "base/build_info.hpp"
#include "model/gpu_spec.hpp"
#include "model/model_spec.hpp"
#include "plan/memory_model.hpp"
#include "plan/step_stage.hpp"
#include "run/step_run.hpp"

namespace ob {
namespace {

constexpr double gib = 1024.0 * 1024.0 * 1024.0;

// The GPT shape Korthikanti et al. count: MHA, a 4h GeLU MLP, unfused attention, dropout.
model_spec korthikanti_gpt() {
  model_spec m;
  m.hidden = 12288;
  m.ffn_hidden = 4 * 12288;
  m.heads = m.kv_heads = 96;
  m.seq_length = 2048;
  m.layers = 96;
  m.vocab_size = 51200;
  m.attention = attention_backend::unfused;
  m.attention_dropout = m.hidden_dropout = 0.1;
  return m;
}

step_config layout(int tp, bool sp, recompute_mode r, int mbs = 1, int cp = 1) {
  step_config c;
  c.tp = tp;
  c.sequence_parallel = sp;
  c.recompute = r;
  c.mbs = mbs;
  c.cp = cp;
  return c;
}

// Table 2 of arXiv 2205.05198: activation bytes per layer, s b h (34 + 5as/h) and its shards.
TEST(Memory, LayerActivationsFollowKorthikanti) {
  const model_spec m = korthikanti_gpt();
  const double s = 2048, b = 2, h = 12288, a = 96, t = 8;
  const double sbh = s * b * h;
  const auto at = [&](int tp, bool sp, recompute_mode r) {
    return layer_activation_bytes(m, layout(tp, sp, r, 2));
  };
  EXPECT_DOUBLE_EQ(at(1, false, recompute_mode::none), sbh * (34 + 5 * a * s / h));
  EXPECT_DOUBLE_EQ(at(8, false, recompute_mode::none), sbh * (10 + 24 / t + 5 * a * s / (h * t)));
  EXPECT_DOUBLE_EQ(at(8, true, recompute_mode::none), sbh / t * (34 + 5 * a * s / h));
  EXPECT_DOUBLE_EQ(at(8, true, recompute_mode::selective), sbh / t * 34);
  EXPECT_DOUBLE_EQ(at(8, false, recompute_mode::selective), sbh * (10 + 24 / t));
  EXPECT_DOUBLE_EQ(at(8, false, recompute_mode::full), 2 * sbh);
  EXPECT_DOUBLE_EQ(at(8, true, recompute_mode::full), 2 * sbh / t);
}

// Context parallelism splits the sequence: every per-token tensor halves with cp = 2; the
// scores of unfused attention keep every key, so they halve too (half the queries).
TEST(Memory, ContextParallelHalvesTheLayer) {
  model_spec m = korthikanti_gpt();
  for (auto backend : {attention_backend::unfused, attention_backend::flash}) {
    m.attention = backend;
    const double one = layer_activation_bytes(m, layout(4, true, recompute_mode::none, 1, 1));
    const double two = layer_activation_bytes(m, layout(4, true, recompute_mode::none, 1, 2));
    EXPECT_DOUBLE_EQ(two, one / 2) << to_string(backend);
  }
}

// Flash attention never stores the s x s scores: its layer is selective recompute's.
TEST(Memory, FlashAttentionStoresNoScores) {
  model_spec m = korthikanti_gpt();
  m.attention = attention_backend::flash;
  m.attention_dropout = 0;
  const step_config c = layout(8, true, recompute_mode::none);
  const double sbh = 2048.0 * 12288;
  // 34 s b h / t, plus the fp32 log-sum-exp per head: 4 a s b / t.
  EXPECT_DOUBLE_EQ(layer_activation_bytes(m, c), sbh / 8 * 34 + 4.0 * 96 * 2048 / 8);
}

// With fp8 Transformer Engine keeps each GEMM's input as its own quantized copy (docs/MEMORY.md
// §2.2): QKV's and FC1's inputs (sequence-parallel shards) and FC2's (the activation output)
// shrink from 2 bytes to the recipe's width; the norms' inputs, Q, K, V, the attention output
// and FC1's output stay 16-bit.
TEST(Memory, LowPrecisionKeepsQuantizedGemmInputs) {
  model_spec m = korthikanti_gpt();
  m.attention = attention_backend::flash;
  m.attention_dropout = m.hidden_dropout = 0;
  m.scaling = fp8_scaling::current;
  const step_config c = layout(8, true, recompute_mode::none);
  const double tokens = 2048, h = 12288, f = 4 * h, t = 8;
  const double bf16 = layer_activation_bytes(m, c);
  const auto saved = [&](dtype type) {
    model_spec x = m;
    x.type = type;
    return bf16 - layer_activation_bytes(x, c);
  };
  EXPECT_DOUBLE_EQ(saved(dtype::fp8), tokens / t * (2 * h + f));
  EXPECT_DOUBLE_EQ(saved(dtype::mxfp8), tokens / t * (2 * h + f) * (1 - 1.0 / 32));
  EXPECT_DOUBLE_EQ(saved(dtype::nvfp4), tokens / t * (2 * h + f) * (1.5 - 1.0 / 16));
  // Layernorm recompute drops the norms' outputs whatever their width: nothing left to save.
  step_config r = c;
  r.recompute = recompute_mode::selective;
  r.recompute_modules = static_cast<unsigned>(recompute_module::core_attn) |
                        static_cast<unsigned>(recompute_module::layernorm);
  model_spec x = m;
  x.type = dtype::fp8;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(m, r) - layer_activation_bytes(x, r), tokens / t * f);
}

// Megatron lets the output projection keep the 16-bit attention output flash attention keeps,
// except with delayed scaling, where TE's projection also keeps its fp8 copy (one byte more).
TEST(Memory, DelayedScalingKeepsTheProjectionsFp8Copy) {
  model_spec m = korthikanti_gpt();
  m.attention = attention_backend::flash;
  m.type = dtype::fp8;
  const step_config c = layout(8, true, recompute_mode::none);
  m.scaling = fp8_scaling::current;
  const double current = layer_activation_bytes(m, c);
  m.scaling = fp8_scaling::delayed;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(m, c) - current, 2048.0 * 12288 / 8);
  m.type = dtype::mxfp8;  // no per-tensor scaling: no copy
  const double mx = layer_activation_bytes(m, c);
  m.scaling = fp8_scaling::current;
  EXPECT_DOUBLE_EQ(layer_activation_bytes(m, c), mx);
}

// A MoE layer with fp8: the router keeps the pre-MLP norm's 16-bit output, so only QKV's input
// shrinks there, and each routed copy's permuted token and activation output (the grouped
// GEMMs' inputs) are kept in fp8.
TEST(Memory, Fp8ExpertsKeepQuantizedTokens) {
  model_spec m = load_model_spec("qwen3_30b_a3b");
  m.scaling = fp8_scaling::current;
  step_config c = layout(1, false, recompute_mode::none);
  c.ep = c.etp = 1;
  const double tokens = static_cast<double>(m.seq_length), h = 2048, fe = 768, topk = 8;
  model_spec x = m;
  x.type = dtype::fp8;
  const double saved = layer_activation_bytes(m, c, true) - layer_activation_bytes(x, c, true);
  EXPECT_DOUBLE_EQ(saved, tokens * (h + topk * c.moe_imbalance * (h + fe)));
}

// The sync-free dispatch (docs/MEMORY.md §2.3): HybridEP's dispatched tensor, and the grouped
// MLP's outputs after it, have the static budget's rows, F x topk per token on every EP rank,
// whatever the busiest rank really receives; without the budget they have the received rows.
TEST(Memory, SyncFreeBudgetSizesTheRoutedCopies) {
  const model_spec m = load_model_spec("qwen3_30b_a3b");  // bf16, a GLU
  step_config c = layout(1, false, recompute_mode::none);
  c.ep = c.etp = 1;
  const double tokens = static_cast<double>(m.seq_length), h = 2048, fe = 768, topk = 8;
  const double per_copy = 2 * h + 2 * (2 * fe) + 2 * fe;  // permuted token, FC1 out, act out
  c.moe_imbalance = 1.2;
  const double received = layer_activation_bytes(m, c, true);
  c.moe_expert_rank_capacity_factor = 1.5;
  const double budget = layer_activation_bytes(m, c, true);
  EXPECT_DOUBLE_EQ(budget - received, tokens * topk * (1.5 - 1.2) * per_copy);
  c.moe_imbalance = 1.0;  // the real counts no longer size the tensors
  EXPECT_DOUBLE_EQ(layer_activation_bytes(m, c, true), budget);
  EXPECT_DOUBLE_EQ(layer_activation_bytes(m, c, false), [&] {
    step_config d = c;
    d.moe_expert_rank_capacity_factor = 0;
    return layer_activation_bytes(m, d, false);  // a dense layer has no budget
  }());
}

gpu_spec gpu_with(double hbm_gib) {
  gpu_spec g;
  g.hbm_gib = hbm_gib;
  return g;
}

// A checked layout: dp, micro-batches and layers filled as check_step would.
step_config pipeline(int pp, int vp, int microbatches, int layers) {
  step_config c = layout(1, false, recompute_mode::none);
  c.pp = pp;
  c.vp = vp;
  c.microbatches = microbatches;
  c.layers_used = layers;
  c.gpus = pp;
  return c;
}

// 1F1B holds pp micro-batches on the first stage: L layers' worth; interleaving holds
// L (1 + (p - 1) / (p v)) (Korthikanti et al. §4.2.3).
TEST(Memory, FirstStageHoldsThePipelinesInFlightMicroBatches) {
  model_spec m = korthikanti_gpt();
  m.vocab_size = 128;  // the last stage's logits stay small: the first stage is the loaded one
  const double layer = layer_activation_bytes(m, pipeline(4, 1, 8, 32)) / gib;
  const memory_estimate plain = estimate_memory(m, gpu_with(0), pipeline(4, 1, 8, 32), 0);
  EXPECT_EQ(plain.stage, 0);
  EXPECT_NEAR(plain.gib.activations, 32 * layer, 1e-6);
  const memory_estimate inter = estimate_memory(m, gpu_with(0), pipeline(4, 2, 8, 32), 0);
  EXPECT_NEAR(inter.gib.activations, 32 * (1 + 3.0 / (4 * 2)) * layer, 1e-6);
  // Fewer micro-batches than stages: only those are in flight.
  const memory_estimate few = estimate_memory(m, gpu_with(0), pipeline(4, 1, 2, 32), 0);
  EXPECT_NEAR(few.gib.activations, 2 * 8 * layer, 1e-6);
}

// The loss's logits (docs/MEMORY.md §2.2): Megatron's native fused (and unfused) cross entropy
// keeps an fp32 softmax, 4 s b V / t bytes on the last stage; TE's writes the gradient into the
// 16-bit logits in place and keeps only them: half as many bytes.
TEST(Memory, TeCrossEntropyKeepsTheSixteenBitLogits) {
  const model_spec m = korthikanti_gpt();
  step_config c = pipeline(1, 1, 1, 96);
  c.tp = 2;
  c.mbs = 2;
  const auto acts = [&](cross_entropy_impl impl) {
    step_config x = c;
    x.cross_entropy = impl;
    return estimate_memory(m, gpu_with(0), x, 0).gib.activations * gib;
  };
  const double logits = 2048.0 * 2 * 51200 / 2;  // s b V / t
  EXPECT_NEAR(acts(cross_entropy_impl::native) - acts(cross_entropy_impl::te), 2 * logits, 64);
}

// Megatron's bytes per parameter (docs/MEMORY.md §1): bf16 weights with fp32 gradients take
// 6 + 12/d with the distributed optimizer over d ranks, 18 without; bf16 gradients 4 + 16/d.
TEST(Memory, BytesPerParameterFollowMegatron) {
  const model_spec m = korthikanti_gpt();
  step_config c = pipeline(1, 1, 1, 96);
  c.dp = 4;
  c.cp = 2;
  const auto per_param = [&](const step_config& cfg) {
    const memory_estimate e = estimate_memory(m, gpu_with(0), cfg, 0);
    const double params = e.gib.weights / 2;
    return (e.gib.weights + e.gib.gradients + e.gib.optimizer) / params;
  };
  EXPECT_NEAR(per_param(c), 6 + 12.0 / 8, 1e-9);
  c.distributed_optimizer = false;
  EXPECT_NEAR(per_param(c), 18, 1e-9);
  c.distributed_optimizer = true;
  c.grad_reduce_in_fp32 = false;
  EXPECT_NEAR(per_param(c), 4 + 16.0 / 8, 1e-9);
}

// Routed experts shard over EP x ETP (docs/MEMORY.md §1): doubling EP halves the expert weights a
// GPU holds; dense layers (DeepSeek-V3's first three) hold none; the distributed optimizer
// shards the experts' states over expert DP.
TEST(Memory, ExpertWeightsShardOverEpAndEtp) {
  model_spec m = load_model_spec("qwen3_30b_a3b");
  m.moe.layers.assign(4, true);
  m.moe.layers[0] = false;  // one dense layer first
  step_config c = pipeline(1, 1, 1, 4);
  c.gpus = c.dp = 16;
  c.ep = 1;
  c.etp = 1;
  c.edp = 16;
  const double h = 2048, f = 768, experts = 128;
  const auto weights = [&](int ep, int etp) {
    step_config x = c;
    x.ep = ep;
    x.etp = etp;
    x.edp = 16 / (ep * etp);
    return estimate_memory(m, gpu_with(0), x, 0).gib.weights * gib / 2;  // parameters
  };
  const double routed = 3 * experts * h * 3 * f;  // 3 MoE layers, gated (3 h f per expert)
  EXPECT_NEAR(weights(1, 1) - weights(8, 1), routed * (1 - 1.0 / 8), 1);
  EXPECT_NEAR(weights(2, 1) - weights(2, 2), routed / 4, 1);
  // The dense layer carries the dense MLP, not experts: moving it to MoE adds experts x 3hf'
  // and a router, and drops the dense 3hf.
  model_spec all = m;
  all.moe.layers.assign(4, true);
  const auto params = [&](const model_spec& mm) {
    return estimate_memory(mm, gpu_with(0), c, 0).gib.weights * gib / 2;
  };
  EXPECT_NEAR(params(all) - params(m), experts * h * 3 * f + h * experts - h * 3 * 6144, 1);
  // Adam's states: the experts' over expert DP (16 / ep), the rest over DP x CP (16).
  step_config x = c;
  x.ep = 8;
  x.edp = 2;
  const memory_estimate e = estimate_memory(m, gpu_with(0), x, 0);
  const double expert_params = 3 * (experts / 8) * h * 3 * f;
  const double dense_params = e.gib.weights * gib / 2 - expert_params;
  EXPECT_NEAR(e.gib.optimizer * gib, dense_params * 12 / 16 + expert_params * 12 / 2, 64);
}

TEST(Memory, FitsAgainstTheGpuFilesCapacity) {
  const model_spec m = korthikanti_gpt();
  const step_config c = pipeline(1, 1, 1, 96);
  EXPECT_FALSE(estimate_memory(m, gpu_with(0), c, 0).fits.has_value());
  const memory_estimate e = estimate_memory(m, gpu_with(1e6), c, 0);
  ASSERT_TRUE(e.fits.has_value());
  EXPECT_TRUE(*e.fits);
  EXPECT_TRUE(estimate_memory(m, gpu_with(e.gib.total() * 0.99), c, 0).over());
}

step_scenario flags(const std::string& model, int gpus, int tp, int pp) {
  step_scenario sc;
  sc.model = model;
  sc.cluster = "dgx_h100";
  sc.axes = {
      {"gpus", {std::to_string(gpus)}}, {"tp", {std::to_string(tp)}}, {"pp", {std::to_string(pp)}}};
  return sc;
}

// The infeasible layouts: Llama 3.1 405B on 8 H100 (its bf16 weights alone are 101 GB
// per GPU at TP 8); Llama 3.1 70B at TP 1 PP 1 without the distributed optimizer.
TEST(Memory, InfeasibleLayoutsDoNotFit) {
  const step_run_case big = resolve_step(flags("llama31_405b", 8, 8, 1)).cases.at(0);
  EXPECT_TRUE(big.memory.over());
  EXPECT_GT(big.memory.gib.weights, 90);
  step_scenario sc = flags("llama31_70b", 8, 1, 1);
  sc.axes.push_back({"distributed_optimizer", {"off"}});
  EXPECT_TRUE(resolve_step(sc).cases.at(0).memory.over());
}

// The published dense layouts (configs/scenarios/step_published_*.json) fit as published; the
// Llama 3 paper's with 16-bit gradients, the departure their scenarios state (CALIBRATION.md §3.7).
TEST(Memory, PublishedLayoutsFit) {
  for (const char* name : {"gpt3_175b_h100", "llama31_70b_h100", "llama3_405b_h100_8k_gpus",
                           "llama3_405b_h100_16k_gpus", "llama3_405b_h100_16k_gpus_cp16"}) {
    const std::string path =
        std::string(OB_SOURCE_DIR) + "/configs/scenarios/step_published_" + name + ".json";
    for (const step_run_case& rc : resolve_step(load_step_scenario(path)).cases)
      EXPECT_FALSE(rc.memory.over()) << name << " " << rc.memory.gib.total() << " GiB";
  }
}

// The Llama 3 paper's 405B layouts (TP 8, PP 16; DP 64 or 128 at seq 8192, CP 16 at 131072) fit
// with 16-bit gradient reduction. The paper reduces fp32 gradients sharded over DP (FSDP), which
// the model does not plan: with whole fp32 gradients it puts them about 3 GiB over
// (docs/CALIBRATION.md §3.7).
TEST(Memory, PublishedLlama3At8kAnd16kGpusFits) {
  for (const auto& [gpus, cp, seq, gbs] :
       {std::tuple{8192, 1, 8192, 2048}, {16384, 1, 8192, 2048}, {16384, 16, 131072, 128}}) {
    step_scenario sc = flags("llama31_405b", gpus, 8, 16);
    sc.axes.push_back({"cp", {std::to_string(cp)}});
    sc.axes.push_back({"seq", {std::to_string(seq)}});
    sc.axes.push_back({"gbs", {std::to_string(gbs)}});
    sc.axes.push_back({"grad_reduce_in_fp32", {"off"}});
    const step_run_case rc = resolve_step(sc).cases.at(0);
    EXPECT_FALSE(rc.memory.over()) << gpus << " GPUs: " << rc.memory.gib.total() << " GiB";
  }
}

}  // namespace
}  // namespace ob
