#include <gtest/gtest.h>

#include "base/error.hpp"
#include "model/model_spec.hpp"
#include "model/workload.hpp"

namespace ob {
namespace {

layer_workload gpt3_tp4() {
  return make_layer_workload(load_model_spec("gpt3_175b"), parallel_layout{4, 1, 1, 1, 1, true});
}

// The attention kernels at TP 4 and the passes TE adds around them (its layout copies, fp8
// casts), in the order the layer runs them.
struct attention_pass {
  std::string slot;
  std::uint64_t bytes;
  double flops;
  elementwise_math math;
  bool dropout;
};
std::vector<attention_pass> attention_passes(const model_spec& m) {
  std::vector<attention_pass> out;
  for (const auto& s : make_layer_workload(m, parallel_layout{4, 1, 1, 1, 1, true}).steps)
    if (const auto* e = std::get_if<layer_elementwise>(&s);
        e && (e->slot.rfind("attn_", 0) == 0 || e->slot.find("fp8_dpa") != std::string::npos))
      out.push_back({e->slot, e->params.bytes, e->params.flops, e->params.math, e->params.dropout});
  return out;
}

// Hand calculations for GPT-3 175B at TP4, T = 2048 tokens, h = 12288, ffn = 49152, 96 heads:
// qkv width 3h = 36864 -> 9216 per rank.
TEST(Workload, Gpt3TP4GemmShapesAndFlops) {
  const auto w = gpt3_tp4();
  EXPECT_EQ(w.tokens, 2048);
  const auto& qkv = w.gemm("qkv_fprop").gemm;
  EXPECT_EQ(qkv.m, 2048);
  EXPECT_EQ(qkv.k, 12288);
  EXPECT_EQ(qkv.n, 9216);
  EXPECT_DOUBLE_EQ(qkv.flops(), 463856467968.0);
  EXPECT_DOUBLE_EQ(w.gemm("proj_fprop").gemm.flops(), 154618822656.0);
  EXPECT_DOUBLE_EQ(w.gemm("fc1_fprop").gemm.flops(), 618475290624.0);
  EXPECT_DOUBLE_EQ(w.gemm("fc2_fprop").gemm.flops(), 618475290624.0);
  // 24·h²·T / tp forward; backward is twice that (dgrad + wgrad).
  EXPECT_DOUBLE_EQ(w.gemm_flops(false), 1855425871872.0);
  EXPECT_DOUBLE_EQ(w.gemm_flops(true), 2 * 1855425871872.0);
}

TEST(Workload, Gpt3TP4CommunicationSizes) {
  const auto w = gpt3_tp4();
  // AG of the LN output: T x h bf16 gathered = 48 MiB (nccl-tests size = gathered total).
  EXPECT_EQ(w.gemm("qkv_fprop").comm_bytes, 50331648u);
  EXPECT_EQ(w.gemm("qkv_fprop").comm, coll_op::all_gather);
  EXPECT_EQ(w.gemm("qkv_fprop").relation, comm_relation::ag_input);
  // RS of proj's output: T x h bf16 input = 48 MiB.
  EXPECT_EQ(w.gemm("proj_fprop").comm_bytes, 50331648u);
  EXPECT_EQ(w.gemm("proj_fprop").comm, coll_op::reduce_scatter);
  EXPECT_EQ(w.gemm("fc1_wgrad").relation, comm_relation::independent_rs);
  EXPECT_EQ(w.gemm("fc1_dgrad").relation, comm_relation::independent_ag);
  EXPECT_EQ(w.gemm("proj_wgrad").relation, comm_relation::external);
  EXPECT_EQ(w.gemm("proj_wgrad").comm_bytes, 0u);
}

TEST(Workload, ElementwiseOpsCarryBytesAndFlops) {
  const auto w = gpt3_tp4();
  bool saw_ln = false, saw_attn = false;
  for (const auto& s : w.steps) {
    if (const auto* e = std::get_if<layer_elementwise>(&s)) {
      if (e->slot == "ln1_fwd") {
        saw_ln = true;
        // Sequence-parallel LN on T/t rows: read bf16, write bf16.
        EXPECT_EQ(e->params.bytes, 25165824u);
        EXPECT_TRUE(e->params.persistent);
      }
      if (e->slot == "attn_fwd") {
        saw_attn = true;
        // 4·T·seq·h/t, halved for causal attention.
        EXPECT_DOUBLE_EQ(e->params.flops, 25769803776.0);
      }
    }
  }
  EXPECT_TRUE(saw_ln);
  EXPECT_TRUE(saw_attn);
}

TEST(Workload, SwiGluDoublesFc1AndGqaNarrowsQkv) {
  const auto w =
      make_layer_workload(load_model_spec("llama3_70b"), parallel_layout{4, 1, 1, 1, 1, true});
  // (64 + 2·8) heads x 128 = 10240 -> 2560 per rank.
  EXPECT_EQ(w.gemm("qkv_fprop").gemm.n, 2560);
  EXPECT_EQ(w.gemm("fc1_fprop").gemm.n, 2 * 28672 / 4);
  EXPECT_EQ(w.gemm("fc2_fprop").gemm.k, 28672 / 4);
}

TEST(Workload, NoSequenceParallelMeansAllReducesInsteadOfAgRs) {
  const auto w =
      make_layer_workload(load_model_spec("gpt3_175b"), parallel_layout{4, 1, 1, 1, 1, false});
  EXPECT_EQ(w.gemm("qkv_fprop").comm_bytes, 0u);  // the input is already replicated
  for (const char* slot : {"proj_fprop", "fc2_fprop", "qkv_dgrad", "fc1_dgrad"}) {
    EXPECT_EQ(w.gemm(slot).relation, comm_relation::ar_output) << slot;
    EXPECT_EQ(w.gemm(slot).comm, coll_op::all_reduce) << slot;
    EXPECT_EQ(w.gemm(slot).comm_bytes, 50331648u) << slot;  // T x h bf16 buffer
  }
  EXPECT_EQ(w.gemm("fc1_wgrad").comm_bytes, 0u);
  // TP1 has nothing to reduce.
  const auto w1 =
      make_layer_workload(load_model_spec("gpt3_175b"), parallel_layout{1, 1, 1, 1, 1, false});
  EXPECT_EQ(w1.gemm("proj_fprop").comm_bytes, 0u);
}

TEST(Workload, RejectsLayoutsThatDoNotDivide) {
  EXPECT_THROW(
      make_layer_workload(load_model_spec("gpt3_175b"), parallel_layout{7, 1, 1, 1, 1, true}),
      config_error);
  EXPECT_THROW(
      make_layer_workload(load_model_spec("llama3_70b"), parallel_layout{16, 1, 1, 1, 1, true}),
      config_error);  // 8 kv heads over 16 ranks
}

// Unfused attention (Megatron's original core attention) writes and reads the seq x seq scores
// in HBM: its bytes grow with seq^2 and dwarf flash attention's; dropout adds a pass; context
// parallelism refuses it.
TEST(Workload, UnfusedAttentionMovesTheScoresThroughHbm) {
  model_spec m = load_model_spec("gpt_22b");
  ASSERT_EQ(m.attention, attention_backend::unfused);
  const parallel_layout tp8{8, 1, 1, 1, 1, false};
  const auto attention_bytes = [&](const model_spec& spec) {
    double bytes = 0;
    int kernels = 0;
    for (const auto& s : make_layer_workload(spec, tp8).steps)
      if (const auto* e = std::get_if<layer_elementwise>(&s); e && e->slot.rfind("attn_", 0) == 0) {
        bytes += static_cast<double>(e->params.bytes);
        ++kernels;
      }
    return std::pair{bytes, kernels};
  };
  const double scores = 4.0 * 2048 * (64 / 8) * 2048;  // mbs x local heads x seq x seq
  const auto [unfused, unfused_kernels] = attention_bytes(m);
  // scores, softmax, dropout, context and its copy into [s, b, h/t]; and the first four's backward
  EXPECT_EQ(unfused_kernels, 9);
  // 2 + 4 + 5 + 2 bytes per score forward, 4 + 5 + 6 + 4 backward, plus q, k, v and the copy.
  EXPECT_GT(unfused, 32 * scores);
  EXPECT_LT(unfused, 34 * scores);
  m.attention_dropout = 0;
  EXPECT_EQ(attention_bytes(m).second, 7);
  m.attention = attention_backend::flash;
  const auto [flash, flash_kernels] = attention_bytes(m);
  EXPECT_EQ(flash_kernels, 2);
  EXPECT_LT(flash * 20, unfused);
  // The fused kernels run at flash attention's efficiency; unfused ones are batched GEMMs.
  const auto math_of = [&](const model_spec& spec, const std::string& slot) {
    for (const auto& s : make_layer_workload(spec, tp8).steps)
      if (const auto* e = std::get_if<layer_elementwise>(&s); e && e->slot == slot)
        return e->params.math;
    ADD_FAILURE() << "no slot " << slot;
    return elementwise_math::gemm;
  };
  EXPECT_EQ(math_of(m, "attn_fwd"), elementwise_math::flash_attention_fwd);
  EXPECT_EQ(math_of(m, "attn_bwd"), elementwise_math::flash_attention_bwd);
  // With attention dropout the fused kernels draw the mask themselves: the same two kernels, the
  // same bytes, marked so that they run at the dropout share of their rate.
  const auto dropout_of = [&](const model_spec& spec, const std::string& slot) {
    for (const auto& s : make_layer_workload(spec, tp8).steps)
      if (const auto* e = std::get_if<layer_elementwise>(&s); e && e->slot == slot)
        return e->params.dropout;
    ADD_FAILURE() << "no slot " << slot;
    return false;
  };
  EXPECT_FALSE(dropout_of(m, "attn_fwd"));
  EXPECT_FALSE(dropout_of(m, "attn_bwd"));
  model_spec dropped = m;
  dropped.attention_dropout = 0.1;
  EXPECT_TRUE(dropout_of(dropped, "attn_fwd"));
  EXPECT_TRUE(dropout_of(dropped, "attn_bwd"));
  EXPECT_EQ(attention_bytes(dropped), attention_bytes(m));
  model_spec unfused_spec = m;
  unfused_spec.attention = attention_backend::unfused;
  EXPECT_EQ(math_of(unfused_spec, "attn_fwd"), elementwise_math::gemm);
  EXPECT_EQ(math_of(unfused_spec, "attn_fwd_scores"), elementwise_math::gemm);
  m.attention = attention_backend::unfused;
  EXPECT_THROW(make_layer_workload(m, parallel_layout{8, 2, 1, 1, 1, false}), config_error);
}

// fp8 dot-product attention (TE's fp8_dpa): the fused kernels switch to cuDNN's fp8 rates and the
// casts TE's FusedAttnFunc adds sit around them, in order, with the bytes each pass moves
// (docs/ARCHITECTURE.md §3.1): MXFP8 quantizes Q, K, V and dO row- and column-wise; delayed
// scaling casts them once and dequantizes O and dQKV; current scaling adds an amax pass first.
TEST(Workload, Fp8DotProductAttentionCastsAroundTheKernels) {
  model_spec m = load_model_spec("gpt3_175b");
  // 2048 tokens; q, k, v 9216 columns and the output 3072 per rank.
  const double qkv = 2048.0 * 9216, o = 2048.0 * 3072;
  m.type = dtype::mxfp8;
  const auto off = attention_passes(m);
  ASSERT_EQ(off.size(), 2u);
  EXPECT_EQ(off[0].math, elementwise_math::flash_attention_fwd);
  m.fp8_dpa = true;
  const auto mx = attention_passes(m);
  ASSERT_EQ(mx.size(), 4u);
  EXPECT_EQ(mx[0].slot, "qkv_fp8_dpa_cast");
  EXPECT_EQ(mx[1].slot, "attn_fwd");
  EXPECT_EQ(mx[2].slot, "proj_fp8_dpa_dout_cast");
  EXPECT_EQ(mx[3].slot, "attn_bwd");
  EXPECT_EQ(mx[0].bytes, static_cast<std::uint64_t>((4 + 2.0 / 32) * qkv));
  EXPECT_EQ(mx[2].bytes, static_cast<std::uint64_t>((4 + 2.0 / 32) * o));
  EXPECT_EQ(mx[1].math, elementwise_math::mxfp8_attention_fwd);
  EXPECT_EQ(mx[3].math, elementwise_math::mxfp8_attention_bwd);
  EXPECT_EQ(mx[1].bytes, off[0].bytes);  // the kernel's own bytes: the 16-bit count
  m.type = dtype::fp8;
  m.scaling = fp8_scaling::delayed;
  const auto ds = attention_passes(m);
  ASSERT_EQ(ds.size(), 6u);
  const std::vector<std::string> ds_order = {"qkv_fp8_dpa_cast", "attn_fwd",
                                             "proj_fp8_dpa_out", "proj_fp8_dpa_dout_cast",
                                             "attn_bwd",         "qkv_fp8_dpa_dgrad"};
  for (std::size_t i = 0; i < ds.size(); ++i) EXPECT_EQ(ds[i].slot, ds_order[i]);
  EXPECT_EQ(ds[0].bytes, static_cast<std::uint64_t>(3 * qkv));
  EXPECT_EQ(ds[2].bytes, static_cast<std::uint64_t>(3 * o));
  EXPECT_EQ(ds[5].bytes, static_cast<std::uint64_t>(3 * qkv));
  EXPECT_EQ(ds[1].math, elementwise_math::fp8_attention_fwd);
  EXPECT_EQ(ds[4].math, elementwise_math::fp8_attention_bwd);
  m.scaling = fp8_scaling::current;
  const auto cs = attention_passes(m);
  std::vector<std::string> slots;
  for (const auto& k : cs) slots.push_back(k.slot);
  EXPECT_EQ(slots, (std::vector<std::string>{"qkv_fp8_dpa_amax", "qkv_fp8_dpa_cast", "attn_fwd",
                                             "proj_fp8_dpa_dout_amax", "proj_fp8_dpa_dout_cast",
                                             "attn_bwd"}));
  EXPECT_EQ(cs[0].bytes, static_cast<std::uint64_t>(2 * qkv));
}

// FlashAttention-2 through TE (attention_backend flash2): the kernels run at its rates, and TE
// copies Megatron's interleaved [s, b, heads, 3, d] QKV views into separate [b, s, ...] tensors
// before the forward (`_PrepareQKVForFA`, head dim 128 and at least 512 rows) and the gradients
// back after the backward; the output's transpose back copies only with more than one sequence.
TEST(Workload, FlashAttention2CopiesQkvIntoItsLayout) {
  model_spec m = load_model_spec("gpt3_175b");
  m.attention = attention_backend::flash2;
  const auto a = attention_passes(m);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].slot, "attn_fwd_fa_prepare");
  EXPECT_EQ(a[1].slot, "attn_fwd");
  EXPECT_EQ(a[2].slot, "attn_bwd");
  EXPECT_EQ(a[3].slot, "attn_bwd_fa_prepare");
  // q, k and v of 2048 tokens x 9216 columns per rank, bf16, read and written.
  const std::uint64_t qkv = 2048ull * 9216 * 2;
  EXPECT_EQ(a[0].bytes, 2 * qkv);
  EXPECT_EQ(a[3].bytes, 2 * qkv);
  EXPECT_EQ(a[0].flops, 0);
  EXPECT_EQ(a[1].math, elementwise_math::flash2_attention_fwd);
  EXPECT_EQ(a[2].math, elementwise_math::flash2_attention_bwd);
  // The dropout mark stays on the kernels, not on the copies.
  model_spec dropped = m;
  dropped.attention_dropout = 0.1;
  const auto d = attention_passes(dropped);
  EXPECT_TRUE(d[1].dropout && d[2].dropout);
  EXPECT_FALSE(d[0].dropout || d[3].dropout);
  // cuDNN's backend reads the sbhd views in place: no copies, the same kernels' bytes.
  model_spec cudnn = m;
  cudnn.attention = attention_backend::flash;
  const auto c = attention_passes(cudnn);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].bytes, a[1].bytes);
  EXPECT_EQ(c[0].math, elementwise_math::flash_attention_fwd);
  // GQA is not the interleaved sbh3d layout: each of q, k, v is transposed and made contiguous,
  // a copy of the strided k and v views forward only; with two sequences the query copies too,
  // and so does the output's transpose back, forward and backward. Llama 3.1 70B at TP 4: 16
  // query heads and 2 KV heads of 128 per rank.
  model_spec gqa = load_model_spec("llama31_70b");
  gqa.attention = attention_backend::flash2;
  const auto g1 = attention_passes(gqa);
  ASSERT_EQ(g1.size(), 3u);
  EXPECT_EQ(g1[0].slot, "attn_fwd_fa_copy");
  const std::uint64_t T1 = 8192;
  EXPECT_EQ(g1[0].bytes, 4 * T1 * (2 * 2 * 128));
  gqa.micro_batch = 2;
  const auto g = attention_passes(gqa);
  ASSERT_EQ(g.size(), 5u);
  EXPECT_EQ(g[0].slot, "attn_fwd_fa_copy");
  EXPECT_EQ(g[0].bytes, 4 * (2 * T1) * (16 * 128 + 2 * 2 * 128));
  EXPECT_EQ(g[1].slot, "attn_fwd");
  EXPECT_EQ(g[2].slot, "attn_fwd_fa_out_copy");  // after the kernel forward, before it backward
  EXPECT_EQ(g[3].slot, "attn_bwd_fa_out_copy");
  EXPECT_EQ(g[4].slot, "attn_bwd");
}

// Bias-dropout-add after each sub-layer consumes the reduced output; hidden dropout adds its
// mask forward and a masking kernel backward.
TEST(Workload, ResidualAddsFollowEachSubLayer) {
  model_spec m = load_model_spec("gpt3_175b");
  const auto slots = [&]() {
    std::vector<std::string> out;
    for (const auto& s : make_layer_workload(m, parallel_layout{4, 1, 1, 1, 1, true}).steps)
      if (const auto* e = std::get_if<layer_elementwise>(&s);
          e && (e->slot.rfind("bda_", 0) == 0 || e->slot.rfind("residual_", 0) == 0))
        out.push_back(e->slot);
    return out;
  };
  EXPECT_EQ(slots(), (std::vector<std::string>{"bda_attn_fwd", "bda_mlp_fwd", "residual_mlp_bwd",
                                               "residual_attn_bwd"}));
  m.hidden_dropout = 0.1;
  EXPECT_EQ(slots().size(), 6u);
}

// fp8 with current scaling: every fp8 GEMM input is found its amax and cast right before the GEMM
// that reads it, each pass sized from the tensor (TE's FP8 Current Scaling guide); LayerNorm and
// activation outputs find their amax while written, so only the cast follows them. Delayed
// scaling and bf16 add nothing.
TEST(Workload, Fp8CurrentScalingCastsEachGemmInputBeforeTheGemm) {
  model_spec m = load_model_spec("llama3_8b");
  m.type = dtype::fp8;
  const auto quantize_ops = [&](const parallel_layout& l) {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    const auto w = make_layer_workload(m, l);
    for (std::size_t i = 0; i < w.steps.size(); ++i)
      if (const auto* e = std::get_if<layer_elementwise>(&w.steps[i]);
          e && e->slot.find("_fp8_") != std::string::npos) {
        out.emplace_back(e->slot, e->params.bytes);
        // The next step is the next quantize op of the same tensor, or a GEMM.
        const auto* g = std::get_if<layer_gemm>(&w.steps[i + 1]);
        if (e->slot.ends_with("_cast")) EXPECT_NE(g, nullptr) << e->slot;
      }
    return out;
  };
  const parallel_layout tp1{1, 1, 8, 1, 1, true};
  EXPECT_TRUE(quantize_ops(tp1).empty());  // delayed, the default
  m.scaling = fp8_scaling::current;
  const auto ops = quantize_ops(tp1);
  const std::uint64_t T = 8192, h = 4096, f = 14336, qkv = (32 + 2 * 8) * 128;
  const std::vector<std::pair<std::string, std::uint64_t>> want = {
      {"qkv_fp8_in_cast", 3 * T * h},     {"proj_fp8_in_amax", 2 * T * h},
      {"proj_fp8_in_cast", 3 * T * h},    {"fc1_fp8_in_cast", 3 * T * h},
      {"fc2_fp8_in_cast", 3 * T * f},     {"fc2_fp8_dout_amax", 2 * T * h},
      {"fc2_fp8_dout_cast", 3 * T * h},   {"fc1_fp8_dout_cast", 3 * T * 2 * f},
      {"proj_fp8_dout_amax", 2 * T * h},  {"proj_fp8_dout_cast", 3 * T * h},
      {"qkv_fp8_dout_amax", 2 * T * qkv}, {"qkv_fp8_dout_cast", 3 * T * qkv}};
  EXPECT_EQ(ops, want);
  // Under sequence parallelism a LayerNorm's output is cast on the rank's T / tp rows (before its
  // all-gather); column-parallel outputs on all T rows and 1 / tp of the columns.
  const auto tp4 = quantize_ops(parallel_layout{4, 1, 2, 1, 1, true});
  EXPECT_EQ(tp4.front(), (std::pair<std::string, std::uint64_t>{"qkv_fp8_in_cast", 3 * T / 4 * h}));
  EXPECT_EQ(tp4[4], (std::pair<std::string, std::uint64_t>{"fc2_fp8_in_cast", 3 * T * f / 4}));
  // bf16 has no cast whatever the recipe.
  m.type = dtype::bf16;
  EXPECT_TRUE(quantize_ops(tp1).empty());
}

}  // namespace
}  // namespace ob
