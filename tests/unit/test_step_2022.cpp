// What a step adds for gradient accumulation without fusion and for Megatron-LM's mid-2022
// training path (megatron_2022; docs/ARCHITECTURE.md §9.3, docs/CALIBRATION.md §3.7), checked
// on the simulated timeline: each kernel's place, its bytes and its time at the HBM rate.
#include <gtest/gtest.h>

#include "step_test_util.hpp"

namespace ob {
namespace {

using axes_t = std::vector<sweep_axis>;

// GPT 22B (unfused attention, biases) on 8 A100, TP 8, two layers, fp16 main grads.
step_scenario gpt22b(axes_t extra) {
  step_scenario sc;
  sc.model = "gpt_22b";
  sc.cluster = "dgx_a100";
  sc.axes = {{"gpus", {"8"}},         {"tp", {"8"}},          {"mbs", {"1"}},
             {"gbs", {"1"}},          {"layers", {"2"}},      {"grad_reduce_in_fp32", {"off"}},
             {"dp_overlap", {"off"}}, {"tp_overlap", {"off"}}};
  for (sweep_axis& a : extra) {  // a setting given again replaces the base's
    const auto same = [&](const sweep_axis& b) { return b.name == a.name; };
    std::erase_if(sc.axes, same);
    sc.axes.push_back(std::move(a));
  }
  return sc;
}

double bytes_of(const test::timeline& t, const std::string& name) {
  return static_cast<double>(t.named(0, name).as<elementwise_params>().bytes);
}

// Lasts its bytes at the HBM rate, give or take the elementwise efficiency.
void expect_hbm_bound(const test::timeline& t, const gpu_spec& gpu, const std::string& name) {
  const double ideal = bytes_of(t, name) / gpu.hbm_bytes_per_us();
  EXPECT_GE(t.length(0, name), 0.99 * ideal) << name;
  EXPECT_LE(t.length(0, name), 1.3 * ideal + 5) << name;
}

// Without gradient_accumulation_fusion each wgrad GEMM writes a 16-bit gradient and the DDP
// hook adds it into main_grad right after: 2 + 2 x 2 bytes a parameter with fp16 main grads,
// 2 + 2 x 4 with fp32. The output layer's gradient likewise; with the fusion there is no add.
TEST(Step2022, UnfusedGradientAccumulationAddsEachGradientAfterItsGemm) {
  const step_spec spec = resolve_step(gpt22b({{"grad_accum_fusion", {"off"}}}));
  const test::timeline off = test::simulate_spec(spec);
  for (const char* w : {"qkv", "proj", "fc1", "fc2"}) {
    const std::string wgrad = std::string("c0.mb0.L1.") + w + "_wgrad";
    const std::string add = std::string("c0.mb0.L1.") + w + "_grad_add";
    const gemm_params& g = off.named(0, wgrad).as<gemm_params>();
    EXPECT_FALSE(g.accumulate);
    EXPECT_DOUBLE_EQ(bytes_of(off, add), static_cast<double>(g.m) * g.n * 6) << add;
    EXPECT_GE(off.at(0, add).start_us, off.at(0, wgrad).end_us) << add;
    EXPECT_EQ(off.named(0, add).stream, off.named(0, wgrad).stream);
    expect_hbm_bound(off, spec.gpu, add);
  }
  EXPECT_GE(off.at(0, "c0.mb0.output_grad_add").start_us, off.at(0, "c0.mb0.output_wgrad").end_us);
  EXPECT_NE(off.find(0, "c0.mb0.embedding_grad_add"), nullptr);

  const test::timeline fp32 =
      test::simulate(gpt22b({{"grad_accum_fusion", {"off"}}, {"grad_reduce_in_fp32", {"on"}}}));
  const gemm_params& g = fp32.named(0, "c0.mb0.L0.fc2_wgrad").as<gemm_params>();
  EXPECT_DOUBLE_EQ(bytes_of(fp32, "c0.mb0.L0.fc2_grad_add"), static_cast<double>(g.m) * g.n * 10);

  const test::timeline on = test::simulate(gpt22b({}));
  EXPECT_EQ(on.find(0, "c0.mb0.L0.fc2_grad_add"), nullptr);
  EXPECT_EQ(on.find(0, "c0.mb0.output_grad_add"), nullptr);
}

// Megatron-LM 2022's linear layers: QKV's bias added by a kernel after the GEMM (its output read
// and written), and the QKV and fc1 bias gradients summed over the tokens (one read each).
TEST(Step2022, LinearLayersAddAndReduceTheirBiasesInKernelsOfTheirOwn) {
  const step_spec spec =
      resolve_step(gpt22b({{"megatron_2022", {"on"}}, {"grad_accum_fusion", {"off"}}}));
  const test::timeline t = test::simulate_spec(spec);
  const std::string l = "c0.mb0.L0.";
  const gemm_params& qkv = t.named(0, l + "qkv_fprop").as<gemm_params>();
  const gemm_params& fc1 = t.named(0, l + "fc1_fprop").as<gemm_params>();
  const double qkv_out = static_cast<double>(qkv.m) * qkv.n,
               fc1_out = static_cast<double>(fc1.m) * fc1.n;
  EXPECT_DOUBLE_EQ(bytes_of(t, l + "qkv_bias_fwd"), qkv_out * 4);
  EXPECT_DOUBLE_EQ(bytes_of(t, l + "qkv_bias_bgrad"), qkv_out * 2);
  EXPECT_DOUBLE_EQ(bytes_of(t, l + "fc1_bias_bgrad"), fc1_out * 2);
  EXPECT_GE(t.at(0, l + "qkv_bias_fwd").start_us, t.at(0, l + "qkv_fprop").end_us);
  EXPECT_LE(t.at(0, l + "qkv_bias_fwd").end_us, t.at(0, l + "attn_fwd_scores").start_us);
  EXPECT_GE(t.at(0, l + "qkv_bias_bgrad").start_us, t.at(0, l + "qkv_wgrad").end_us);
  EXPECT_GE(t.at(0, l + "fc1_bias_bgrad").start_us, t.at(0, l + "act_bwd").end_us);
  EXPECT_LE(t.at(0, l + "fc1_bias_bgrad").end_us, t.at(0, l + "fc1_dgrad").start_us);
  for (const char* k : {"qkv_bias_fwd", "qkv_bias_bgrad", "fc1_bias_bgrad"})
    expect_hbm_bound(t, spec.gpu, l + k);
  const test::timeline core = test::simulate(gpt22b({}));
  EXPECT_EQ(core.find(0, l + "qkv_bias_fwd"), nullptr);
  EXPECT_EQ(core.find(0, l + "fc1_bias_bgrad"), nullptr);
}

// Local DDP divides the whole fp16 gradient buffer by the DP size (1 here) after the backward
// and before the optimizer; with sequence parallelism the LayerNorm and row-parallel bias
// gradients are all-reduced over TP first, and the embedding all-reduces rather than
// reduce-scatters its lookup.
TEST(Step2022, LocalDdpScalesTheGradientsAtDpOne) {
  const step_spec spec = resolve_step(gpt22b(
      {{"megatron_2022", {"on"}}, {"sequence_parallel", {"on"}}, {"grad_accum_fusion", {"off"}}}));
  const test::timeline t = test::simulate_spec(spec);
  EXPECT_EQ(t.named(0, "grad_scale").slot, "optimizer");
  EXPECT_GE(t.at(0, "grad_scale").start_us, t.at(0, "c0.mb0.L0.ln1_bwd").end_us);
  EXPECT_GE(t.at(0, "grad_scale").start_us, t.at(0, "sp_norm_grad_ar").end_us);
  EXPECT_LE(t.at(0, "grad_scale").end_us, t.at(0, "main_grad_cast").start_us);
  // Every fp16 main grad this rank holds, read and written.
  EXPECT_DOUBLE_EQ(bytes_of(t, "grad_scale"), 2 * bytes_of(t, "grad_zero"));
  expect_hbm_bound(t, spec.gpu, "grad_scale");
  const auto& ar = t.named(0, "sp_norm_grad_ar").as<collective_params>();
  EXPECT_EQ(ar.op, coll_op::all_reduce);
  EXPECT_EQ(ar.group, comm_group::tp);
  EXPECT_EQ(ar.bytes, (2u * 6 * 6144 + 2 * 6144) * 2);  // 2 layers, the final norm, fp16
  EXPECT_EQ(t.named(0, "c0.mb0.embedding.tp").as<collective_params>().op, coll_op::all_reduce);

  const test::timeline core = test::simulate(gpt22b({{"sequence_parallel", {"on"}}}));
  EXPECT_EQ(core.find(0, "grad_scale"), nullptr);
  EXPECT_EQ(core.find(0, "sp_norm_grad_ar"), nullptr);
  EXPECT_EQ(core.named(0, "c0.mb0.embedding.tp").as<collective_params>().op,
            coll_op::reduce_scatter);
}

// Two stages across nodes without sequence parallelism: Megatron-LM 2022 sends 1/t of each
// activation per TP rank and all-gathers it over TP on the compute stream once received;
// Megatron-Core (and 2022 with sequence parallelism) sends the shard it has.
TEST(Step2022, PipelineP2pWithoutSequenceParallelismIsSplitOverTpAndGathered) {
  const auto two_stages = [](const char* legacy, const char* sp) {
    step_scenario sc;
    sc.model = "gpt_22b";
    sc.cluster = "dgx_a100";
    sc.axes = {{"gpus", {"16"}},
               {"tp", {"8"}},
               {"pp", {"2"}},
               {"mbs", {"1"}},
               {"gbs", {"2"}},
               {"layers", {"4"}},
               {"tp_overlap", {"off"}},
               {"dp_overlap", {"off"}},
               {"megatron_2022", {legacy}},
               {"sequence_parallel", {sp}}};
    return test::simulate(sc);
  };
  const std::uint64_t whole = 2048ull * 6144 * 2;
  const test::timeline split = two_stages("on", "off");
  EXPECT_EQ(split.named(1, "pp.recv_prev").as<p2p_params>().bytes, whole / 8);
  const op& gather = split.named(1, "pp.recv_prev.gather");
  EXPECT_EQ(gather.as<collective_params>().op, coll_op::all_gather);
  EXPECT_EQ(gather.as<collective_params>().bytes, whole);
  EXPECT_EQ(gather.stream, split.named(1, "c0.mb0.L0.ln1_fwd").stream);
  EXPECT_GE(split.at(1, "pp.recv_prev.gather").start_us, split.at(1, "pp.recv_prev").end_us);
  EXPECT_LE(split.at(1, "pp.recv_prev.gather").end_us, split.at(1, "c0.mb0.L0.ln1_fwd").start_us);
  EXPECT_NE(split.find(0, "pp.recv_next.gather"), nullptr);

  const test::timeline core = two_stages("off", "off");
  EXPECT_EQ(core.named(1, "pp.recv_prev").as<p2p_params>().bytes, whole);
  EXPECT_EQ(core.find(1, "pp.recv_prev.gather"), nullptr);
  const test::timeline sp = two_stages("on", "on");
  EXPECT_EQ(sp.named(1, "pp.recv_prev").as<p2p_params>().bytes, whole / 8);
  EXPECT_EQ(sp.find(1, "pp.recv_prev.gather"), nullptr);
}

// Unfused attention copies the context from [b, heads, s, d] to [s, b, h/t] after its bmm (read
// and write), and selective recomputation runs the copy again with the core.
TEST(Step2022, UnfusedAttentionCopiesTheContextIntoSequenceMajorOrder) {
  const test::timeline t = test::simulate(gpt22b({{"recompute", {"selective"}}}));
  const std::string l = "c0.mb0.L0.";
  EXPECT_DOUBLE_EQ(bytes_of(t, l + "attn_fwd_permute"), 4.0 * 2048 * (6144 / 8));
  EXPECT_GE(t.at(0, l + "attn_fwd_permute").start_us, t.at(0, l + "attn_fwd").end_us);
  EXPECT_LE(t.at(0, l + "attn_fwd_permute").end_us, t.at(0, l + "proj_fprop").start_us);
  EXPECT_NE(t.find(0, l + "attn_recompute_permute"), nullptr);
}

// What the 2022 release did not have is refused, naming the setting to change; and its rule
// that only fp32 main grads take the fused accumulation.
TEST(Step2022, SettingsThatReleaseLackedAreRefused) {
  EXPECT_EQ(test::resolve_message(gpt22b({{"megatron_2022", {"on"}}, {"tp_overlap", {"on"}}})),
            "--megatron-2022: Megatron-LM 2022 has no Transformer Engine userbuffers: set "
            "--tp-overlap off");
  EXPECT_NE(test::resolve_message(gpt22b({{"megatron_2022", {"on"}}}))
                .find("fuses gradient accumulation only into fp32 main grads"),
            std::string::npos);
  EXPECT_NE(test::resolve_message(gpt22b({{"megatron_2022", {"on"}}, {"dtype", {"bf16"}}}))
                .find("accumulates bf16 gradients in fp32"),
            std::string::npos);
  EXPECT_EQ(
      test::resolve_message(gpt22b({{"megatron_2022", {"on"}}, {"grad_reduce_in_fp32", {"on"}}})),
      "");
}

}  // namespace
}  // namespace ob
