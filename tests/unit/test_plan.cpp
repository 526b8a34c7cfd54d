#include <gtest/gtest.h>

#include <algorithm>

#include "base/error.hpp"
#include "model/model_spec.hpp"
#include "plan/plan.hpp"

namespace ob {
namespace {

struct plan_fixture : ::testing::Test {
  gpu_spec gpu = load_gpu_spec("h100_sxm");
  layer_workload w =
      make_layer_workload(load_model_spec("gpt3_175b"), parallel_layout{4, 1, 1, 1, 1, true});

  std::vector<const op*> ops_of(const schedule& s, std::string_view slot) {
    std::vector<const op*> out;
    for (const auto& o : s.ops)
      if (o.slot == slot) out.push_back(&o);
    return out;
  }
};

TEST_F(plan_fixture, NoneKeepsCommOnTheComputeStream) {
  const schedule s = plan_layer(w, {}, gpu, plan_knobs{});
  for (const auto& o : s.ops) EXPECT_EQ(s.streams[o.stream].role, stream_role::compute) << o.name;
  const auto qkv = ops_of(s, "qkv_fprop");
  ASSERT_EQ(qkv.size(), 2u);
  EXPECT_EQ(qkv[0]->kind(), op_kind::collective);  // AG before the GEMM that consumes it
  EXPECT_EQ(qkv[1]->kind(), op_kind::gemm);
  const auto proj = ops_of(s, "proj_fprop");
  EXPECT_EQ(proj[0]->kind(), op_kind::gemm);  // RS after the GEMM that produces it
  EXPECT_EQ(proj[1]->kind(), op_kind::collective);
}

TEST_F(plan_fixture, PipelineSplitsAlongMAndEachRsWaitsOnItsChunk) {
  slot_overlap_map m;
  m["proj_fprop"] = {overlap_method::pipeline, 24, 2, true, 4};
  const schedule s = plan_layer(w, m, gpu, plan_knobs{});
  const auto proj = ops_of(s, "proj_fprop");
  ASSERT_EQ(proj.size(), 8u);
  std::int64_t rows = 0;
  for (std::size_t i = 0; i < 8; i += 2) {
    ASSERT_EQ(proj[i]->kind(), op_kind::gemm);
    ASSERT_EQ(proj[i + 1]->kind(), op_kind::collective);
    rows += proj[i]->as<gemm_params>().m;
    EXPECT_EQ(proj[i]->as<gemm_params>().sm_margin, 24);  // set_sm_margin
    EXPECT_EQ(proj[i + 1]->waits, std::vector<int>{proj[i]->id});
    EXPECT_EQ(proj[i + 1]->as<collective_params>().bytes, 50331648u / 4);
    EXPECT_EQ(proj[i + 1]->as<collective_params>().ctas, 24);
    EXPECT_EQ(s.streams[proj[i + 1]->stream].role, stream_role::comm);
  }
  EXPECT_EQ(rows, 2048);
  // The residual add consumes the reduce-scattered output: it waits on the RS chunks, and the
  // LayerNorm after it on nothing more.
  const auto bda = ops_of(s, "bda_attn_fwd");
  ASSERT_EQ(bda.size(), 1u);
  EXPECT_EQ(bda[0]->waits.size(), 4u);
  const auto ln2 = ops_of(s, "ln2_fwd");
  ASSERT_EQ(ln2.size(), 1u);
  EXPECT_TRUE(ln2[0]->waits.empty());
}

TEST_F(plan_fixture, RingExchangeRunsTpStepsWithSendRecvFeedingTheNextGemm) {
  slot_overlap_map m;
  m["qkv_fprop"] = {overlap_method::ring_exchange, 1, 1, false, 4};
  const schedule s = plan_layer(w, m, gpu, plan_knobs{});
  const auto qkv = ops_of(s, "qkv_fprop");
  std::vector<const op*> gemms, xfers;
  for (const op* o : qkv) (o->kind() == op_kind::gemm ? gemms : xfers).push_back(o);
  ASSERT_EQ(gemms.size(), 4u);
  ASSERT_EQ(xfers.size(), 3u);
  EXPECT_TRUE(gemms[0]->waits.empty());
  for (int j = 1; j < 4; ++j) EXPECT_EQ(gemms[j]->waits, std::vector<int>{xfers[j - 1]->id});
  EXPECT_EQ(xfers[0]->as<p2p_params>().ctas, 0);  // copy engine, TE's use_ce default
  EXPECT_EQ(xfers[0]->as<p2p_params>().bytes, 50331648u / 4);
  EXPECT_EQ(gemms[0]->as<gemm_params>().m, 512);
}

TEST_F(plan_fixture, BulkRunsTheIndependentCollectiveOnTheCommStream) {
  slot_overlap_map m;
  m["fc1_dgrad"] = {overlap_method::bulk, 2, 2, false};
  m["fc1_wgrad"] = {overlap_method::bulk, 4, 2, false};
  for (launch_order order : {launch_order::comm_first, launch_order::gemm_first}) {
    plan_knobs k;
    k.order = order;
    const schedule s = plan_layer(w, m, gpu, k);
    const auto dgrad = ops_of(s, "fc1_dgrad");
    ASSERT_EQ(dgrad.size(), 2u);
    const op* ag = dgrad[0]->kind() == op_kind::collective ? dgrad[0] : dgrad[1];
    const op* gemm = dgrad[0]->kind() == op_kind::gemm ? dgrad[0] : dgrad[1];
    EXPECT_EQ(order == launch_order::comm_first, ag->id < gemm->id);
    EXPECT_EQ(ag->as<collective_params>().ctas, 2);
    EXPECT_TRUE(ag->waits.size() == 1 && ag->waits[0] < std::min(ag->id, gemm->id))
        << "the AG waits on the op before the pair, never on its GEMM";
    const auto wgrad = ops_of(s, "fc1_wgrad");
    const op* rs = wgrad[0]->kind() == op_kind::collective ? wgrad[0] : wgrad[1];
    const op* wg = wgrad[0]->kind() == op_kind::gemm ? wgrad[0] : wgrad[1];
    EXPECT_EQ(rs->waits, std::vector<int>{gemm->id});  // RS of dgrad's output
    EXPECT_EQ(wg->waits, std::vector<int>{ag->id});    // wgrad needs the gathered input
  }
}

TEST_F(plan_fixture, SmMarginKnobOverridesThePresetForOverlappedGemmsOnly) {
  slot_overlap_map m;
  m["proj_fprop"] = {overlap_method::pipeline, 24, 2, true, 4};
  plan_knobs k;
  k.sm_margin = 8;
  const schedule s = plan_layer(w, m, gpu, k);
  for (const auto& o : s.ops) {
    if (o.kind() != op_kind::gemm) continue;
    EXPECT_EQ(o.as<gemm_params>().sm_margin, o.slot == "proj_fprop" ? 8 : 0) << o.name;
  }
}

TEST_F(plan_fixture, CommCtasKnobAndPriorities) {
  slot_overlap_map m;
  m["fc1_dgrad"] = {overlap_method::bulk, 2, 2, false};
  plan_knobs k;
  k.comm_ctas = 16;
  k.priority = priority_mode::comm_high;
  const schedule s = plan_layer(w, m, gpu, k);
  for (const auto& o : s.ops)
    if (o.kind() == op_kind::collective) {
      EXPECT_EQ(o.as<collective_params>().ctas, 16);
    }
  EXPECT_LT(s.streams[1].priority, s.streams[0].priority);  // comm outranks compute
}

TEST_F(plan_fixture, TeLaunchOrderingMakesEachOverlappedGemmWaitForItsCommKernelToStart) {
  slot_overlap_map m;
  m["fc1_dgrad"] = {overlap_method::bulk, 2, 2, false};
  m["fc1_wgrad"] = {overlap_method::bulk, 4, 2, false};
  m["proj_fprop"] = {overlap_method::pipeline, 24, 2, true, 4};
  plan_knobs k;
  const schedule plain = plan_layer(w, m, gpu, k);  // one schedule: begin and end of the same ops
  EXPECT_TRUE(std::all_of(plain.ops.begin(), plain.ops.end(),
                          [](const op& o) { return o.waits_started.empty(); }));
  k.te_launch_ordering = true;
  const schedule s = plan_layer(w, m, gpu, k);
  const auto dgrad = ops_of(s, "fc1_dgrad");  // AG first (comm_first), then the GEMM
  ASSERT_EQ(dgrad[1]->kind(), op_kind::gemm);
  EXPECT_EQ(dgrad[1]->waits_started, std::vector<int>{dgrad[0]->id});
  const auto wgrad = ops_of(s, "fc1_wgrad");
  EXPECT_EQ(wgrad[1]->waits_started, std::vector<int>{wgrad[0]->id});
  const auto proj = ops_of(s, "proj_fprop");  // gemm0 rs0 gemm1 rs1 ...: gemm i waits rs i-1
  EXPECT_TRUE(proj[0]->waits_started.empty());
  EXPECT_EQ(proj[2]->waits_started, std::vector<int>{proj[1]->id});
  // Dropping comm drops the edges; the serial variant has nothing to order.
  for (variant v : {variant::compute_only, variant::serial})
    for (const auto& o : derive_variant(s, v).ops) EXPECT_TRUE(o.waits_started.empty()) << o.name;
  // gemm_first cannot wait on a kernel enqueued after it.
  k.order = launch_order::gemm_first;
  for (const auto& o : plan_layer(w, m, gpu, k).ops)
    for (int id : o.waits_started) EXPECT_LT(id, o.id);
}

TEST_F(plan_fixture, PipelineChunksAreBalancedAndBytesAddUp) {
  slot_overlap_map m;
  m["proj_fprop"] = {overlap_method::pipeline, 24, 2, true, 3};  // 2048 rows do not split by 3
  const schedule s = plan_layer(w, m, gpu, plan_knobs{});
  std::int64_t rows = 0;
  std::uint64_t bytes = 0;
  for (const op* o : ops_of(s, "proj_fprop")) {
    if (o->kind() == op_kind::gemm) {
      rows += o->as<gemm_params>().m;
      EXPECT_GE(o->as<gemm_params>().m, 682);
    } else {
      bytes += o->as<collective_params>().bytes;
    }
  }
  EXPECT_EQ(rows, 2048);
  EXPECT_EQ(bytes, 50331648u);
  m["proj_fprop"].num_splits = 4096;  // more chunks than rows
  EXPECT_THROW(plan_layer(w, m, gpu, plan_knobs{}), config_error);
}

TEST_F(plan_fixture, WithoutSequenceParallelTheAllReducesRunOnTheComputeStream) {
  const auto w_nosp =
      make_layer_workload(load_model_spec("gpt3_175b"), parallel_layout{4, 1, 1, 1, 1, false});
  const schedule s = plan_layer(w_nosp, {}, gpu, plan_knobs{});
  int ars = 0;
  for (const auto& o : s.ops)
    if (o.kind() == op_kind::collective) {
      EXPECT_EQ(o.as<collective_params>().op, coll_op::all_reduce) << o.name;
      EXPECT_EQ(s.streams[o.stream].role, stream_role::compute);
      ++ars;
    }
  EXPECT_EQ(ars, 4);
}

TEST_F(plan_fixture, PipelineCannotOverlapAnAllGather) {
  slot_overlap_map m;
  m["qkv_fprop"] = {overlap_method::pipeline, 4, 2, true, 4};
  EXPECT_THROW(plan_layer(w, m, gpu, plan_knobs{}), config_error);
}

TEST_F(plan_fixture, PairOrderAndProducer) {
  pair_spec p;
  p.gemm = {4096, 4096, 4096, dtype::bf16, 0};
  p.coll = {coll_op::all_gather, 64 << 20, dtype::bf16, comm_group::tp, 8, 0, "", 1, {}, {}};
  p.producer_us = 20;
  plan_knobs k;
  k.order = launch_order::comm_first;
  k.sm_margin = 16;
  const schedule s = plan_pair(p, gpu, k);
  ASSERT_EQ(s.ops.size(), 3u);
  EXPECT_EQ(s.ops[0].kind(), op_kind::delay);
  EXPECT_EQ(s.ops[1].kind(), op_kind::collective);
  EXPECT_EQ(s.ops[1].waits, std::vector<int>{0});
  EXPECT_EQ(s.ops[2].kind(), op_kind::gemm);
  EXPECT_EQ(s.ops[2].as<gemm_params>().sm_margin, 16);
  k.order = launch_order::gemm_first;
  EXPECT_EQ(plan_pair(p, gpu, k).ops[1].kind(), op_kind::gemm);
}

TEST_F(plan_fixture, VariantsDropCommAndKeepDependencies) {
  slot_overlap_map m;
  m["proj_fprop"] = {overlap_method::pipeline, 24, 2, true, 4};
  const schedule s = plan_layer(w, m, gpu, plan_knobs{});
  const schedule compute = derive_variant(s, variant::compute_only);
  const schedule margin = derive_variant(s, variant::compute_with_margin);
  const schedule comm = derive_variant(s, variant::comm_only);
  const schedule serial = derive_variant(s, variant::serial);
  for (const auto& o : compute.ops) {
    EXPECT_FALSE(o.is_comm());
    if (o.kind() == op_kind::gemm) {
      EXPECT_EQ(o.as<gemm_params>().sm_margin, 0);
    }
  }
  bool kept_margin = false;
  for (const auto& o : margin.ops)
    kept_margin |= o.kind() == op_kind::gemm && o.as<gemm_params>().sm_margin == 24;
  EXPECT_TRUE(kept_margin);
  for (const auto& o : comm.ops) EXPECT_TRUE(o.is_comm());
  EXPECT_EQ(serial.streams.size(), 1u);
  EXPECT_EQ(serial.ops.size(), s.ops.size());
  for (const auto& o : serial.ops) EXPECT_TRUE(o.waits.empty());
  compute.validate();
  comm.validate();
}

}  // namespace
}  // namespace ob
