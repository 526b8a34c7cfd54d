// MoE and block-scaled GEMMs on the cuda backend, tested without a GPU (docs/MOE.md §15): a
// grouped GEMM lowers to one strided-batched cuBLASLt GEMM whose buffers hold every member, the
// expert GEMMs of one slot are not mistaken for chunks of one GEMM, a MoE step's dispatch and
// combine run on the EP stream over the communicator of the rank's expert group (Megatron's
// expert rank order), and mxfp8/nvfp4 GEMMs lower with their block scales on a compute
// capability 10 device and are refused, naming the device and the dtype, elsewhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "cuda/lowering.hpp"
#include "cuda/step_groups.hpp"
#include "lowering_test_util.hpp"
#include "run/step_run.hpp"

namespace ob {
namespace {

using namespace ob::cuda;

constexpr auto overlapped = static_cast<std::size_t>(variant::overlapped);
constexpr auto compute_only = static_cast<std::size_t>(variant::compute_only);

lowering_target device(int rank, int world, int cc_major, bool block_scaling = true) {
  lowering_target t;
  t.global_rank = rank;
  t.world_size = world;
  t.priority_least = 0;
  t.priority_greatest = -5;
  t.device_name = cc_major == 10 ? "NVIDIA B200" : "NVIDIA H100 80GB HBM3";
  t.cc_major = cc_major;
  t.block_scaled_gemms = block_scaling;
  return t;
}

cuda_backend_options cuda_options() {
  cuda_backend_options b;
  b.backend = "cuda";
  return b;
}

gemm_params grouped(std::int64_t m, std::int64_t n, std::int64_t k, int members,
                    dtype t = dtype::bf16) {
  gemm_params g{m, n, k, t, 0};
  g.group = members;
  return g;
}

case_lowering lower_one(const schedule& s, const lowering_target& t) {
  return lower_case(make_variant_schedules(s), measure_options{}, cuda_options(), t);
}

const lowered_action& only_action(const case_lowering& low, const std::string& name) {
  for (const lowered_action& a : low.variants[overlapped].actions)
    if (a.name == name) return a;
  throw std::runtime_error("no action " + name);
}

TEST(moe_lowering, grouped_gemm_is_one_batched_gemm_over_every_members_buffers) {
  schedule s;
  const int c = s.add_stream("compute", stream_role::compute, 0);
  s.add_op("L0.moe_fc1", c, grouped(384, 1536, 2048, 32), {}, "moe_experts");
  const case_lowering low = lower_one(s, device(0, 1, 9));
  const lowered_action& a = only_action(low, "L0.moe_fc1");
  EXPECT_EQ(a.kind, action_kind::gemm);
  EXPECT_EQ(a.gemm.batch, 32);
  EXPECT_EQ(a.gemm.m, 384);  // per member: the busiest expert's tokens
  EXPECT_EQ(a.what, "gemm 384x1536x2048 bf16 x32");
  EXPECT_EQ(a.gemm.alignment, 256);
  EXPECT_EQ(low.buffer(a.x).bytes, 32u * 384 * 2048 * 2);
  EXPECT_EQ(low.buffer(a.w).bytes, 32u * 1536 * 2048 * 2);
  EXPECT_EQ(low.buffer(a.dst).bytes, 32u * 384 * 1536 * 2);
  EXPECT_FALSE(a.x_scale);
  EXPECT_TRUE(low.references.empty());  // one chunk: nothing to check it against
}

TEST(moe_lowering, later_members_alignment_reaches_the_heuristic) {
  // 100 x 1000 bf16 per member: the second member's X starts 200,000 bytes on (64-aligned).
  schedule s;
  const int c = s.add_stream("compute", stream_role::compute, 0);
  s.add_op("L0.moe_fc1", c, grouped(100, 1536, 1000, 4), {}, "moe_experts");
  EXPECT_EQ(only_action(lower_one(s, device(0, 1, 9)), "L0.moe_fc1").gemm.alignment, 64);
}

TEST(moe_lowering, expert_gemms_of_one_slot_are_not_chunks_of_one_gemm) {
  // Without a gated MLP, fc1 [m, h] x [h, f] and fc2's dgrad [m, h] x [h, f] have the same
  // (n, k) and slot; a dense slot with those would be one GEMM in two chunks.
  schedule s;
  const int c = s.add_stream("compute", stream_role::compute, 0);
  s.add_op("L0.moe_fc1", c, grouped(256, 768, 1024, 8), {}, "moe_experts");
  s.add_op("L0.moe_fc2_dgrad", c, grouped(256, 768, 1024, 8), {}, "moe_experts");
  const case_lowering low = lower_one(s, device(0, 1, 9));
  const lowered_action& fc1 = only_action(low, "L0.moe_fc1");
  const lowered_action& dgrad = only_action(low, "L0.moe_fc2_dgrad");
  EXPECT_NE(fc1.x.buffer, dgrad.x.buffer);
  EXPECT_NE(fc1.dst.buffer, dgrad.dst.buffer);
  EXPECT_EQ(fc1.x.offset, 0u);
  EXPECT_EQ(dgrad.x.offset, 0u);
  EXPECT_TRUE(low.references.empty());
  EXPECT_TRUE(low.variants[overlapped].verifies.empty());
}

TEST(moe_lowering, grouped_gemms_of_every_pass_share_their_buffers) {
  schedule s;
  const int c = s.add_stream("compute", stream_role::compute, 0);
  for (const char* pass : {"mb0.L0.", "mb0.L1.", "mb1.L0."})
    s.add_op(std::string(pass) + "moe_fc1", c, grouped(128, 512, 1024, 4), {}, "moe_experts");
  const case_lowering low = lower_one(s, device(0, 1, 9));
  std::set<int> xs;
  for (const lowered_action& a : low.variants[overlapped].actions) xs.insert(a.x.buffer);
  EXPECT_EQ(xs.size(), 1u);
}

// --- a MoE training step ----------------------------------------------------------------------

program_variants moe_step(int gpus, int ep, std::vector<sweep_axis> extra = {},
                          const std::string& gpu = "h100_sxm") {
  step_scenario sc;
  sc.model = "qwen3_30b_a3b";
  sc.gpu = gpu;
  sc.axes = {{"gpus", {std::to_string(gpus)}},
             {"ep", {std::to_string(ep)}},
             {"layers", {"1"}},
             {"gbs", {std::to_string(gpus)}},
             {"seq", {"1024"}},
             {"cdmc", {"8"}}};
  for (sweep_axis& a : extra) sc.axes.push_back(std::move(a));
  const step_spec spec = resolve_step(sc);
  program_variants pv;
  pv[overlapped] = plan_step_case(spec, spec.cases.front()).prog;
  pv[compute_only] = derive_program_variant(pv[overlapped], variant::compute_only);
  return pv;
}

measure_options step_options() {
  measure_options m;
  m.variants = {};
  m.variants[overlapped] = true;
  m.variants[compute_only] = true;
  return m;
}

case_lowering lower_rank(const program_variants& pv, int rank) {
  lowering_target t = device(rank, pv[overlapped].grid.world(), 9);
  t.grid = pv[overlapped].grid;
  return lower_stage(pv, step_options(), cuda_options(), t);
}

using test::actions_with;
using test::stream_of;

TEST(moe_lowering, the_steps_grid_carries_the_expert_layout) {
  const program_variants pv = moe_step(4, 4);
  const rank_grid& g = pv[overlapped].grid;
  EXPECT_EQ(g.ep, 4);
  EXPECT_EQ(g.etp, 1);
  EXPECT_EQ(g.dp, 4);
}

TEST(moe_lowering, dispatch_and_combine_are_all_to_alls_on_the_ep_stream_and_communicator) {
  const program_variants pv = moe_step(4, 4);
  for (int rank = 0; rank < 4; ++rank) {
    const case_lowering low = lower_rank(pv, rank);
    const auto dispatches = actions_with(low, "moe_dispatch");
    const auto combines = actions_with(low, "moe_combine");
    ASSERT_EQ(dispatches.size(), 2u);  // forward and backward
    ASSERT_EQ(combines.size(), 2u);
    for (const lowered_action* a : {dispatches[0], combines[0]}) {
      EXPECT_EQ(a->kind, action_kind::nccl_collective);
      EXPECT_EQ(a->coll, coll_op::all_to_all);
      EXPECT_EQ(a->comm.group, comm_group::ep);
      EXPECT_EQ(a->member.group_size, 4);
      EXPECT_EQ(a->member.position, rank);  // ep coordinate = rank / etp mod ep
      EXPECT_EQ(stream_of(low, *a), "ep");
      // Every peer's shard: the busiest rank's tokens x top-k copies x hidden, bf16, over 4.
      EXPECT_EQ(a->count * 2 * 4, low.buffer(a->src).bytes);
      EXPECT_EQ(all_to_all_transfers(*a).size(), 4u);
    }
    // The EP communicator is in the list every rank creates.
    EXPECT_TRUE(std::any_of(low.comms.begin(), low.comms.end(), [](const comm_key& k) {
      return k.group == comm_group::ep && k.group_size == 4;
    }));
  }
}

TEST(moe_lowering, expert_gemms_are_batched_over_the_local_experts) {
  const program_variants pv = moe_step(4, 4);
  const case_lowering low = lower_rank(pv, 1);
  // 128 experts over EP 4: 32 local experts, planned as Transformer Engine launches them, 4 at a
  // time (docs/MOE.md §19.2): 8 batched matmuls of 4 for each grouped GEMM.
  const auto fc1 = actions_with(low, "moe_fc1");
  ASSERT_FALSE(fc1.empty());
  int forward_waves = 0;
  for (const lowered_action* a : fc1) {
    if (a->name.find("mxfp8") != std::string::npos) continue;
    EXPECT_EQ(a->kind, action_kind::gemm);
    EXPECT_EQ(a->gemm.batch, 4) << a->name;
    forward_waves += a->name.find("mb0.L0.moe_fc1") != std::string::npos &&
                     a->name.find("grad") == std::string::npos;
  }
  EXPECT_EQ(forward_waves, 128 / 4 / 4);
  // The router is a plain GEMM over the experts.
  const auto router = actions_with(low, "moe_router");
  ASSERT_FALSE(router.empty());
  EXPECT_EQ(router.front()->gemm.batch, 1);
  EXPECT_EQ(router.front()->gemm.n, 128);
}

TEST(moe_lowering, flex_dispatchers_run_on_communicators_limited_to_their_sms) {
  // DeepEP's and HybridEP's own kernels are not run: NCCL's all-to-all on a communicator whose
  // maxCTAs is the SMs they hold (docs/MOE.md §7, §15); allgather gathers and scatters over EP.
  const std::vector<std::pair<std::string, int>> sms = {{"deepep", 20}, {"hybridep", 16}};
  for (const auto& [dispatcher, ctas] : sms) {
    const case_lowering low = lower_rank(moe_step(4, 4, {{"moe_dispatcher", {dispatcher}}}), 0);
    const auto dispatch = actions_with(low, "moe_dispatch");
    ASSERT_FALSE(dispatch.empty());
    EXPECT_EQ(dispatch.front()->coll, coll_op::all_to_all);
    EXPECT_EQ(dispatch.front()->comm.max_ctas, ctas) << dispatcher;
  }
  const case_lowering ag = lower_rank(moe_step(4, 4, {{"moe_dispatcher", {"allgather"}}}), 0);
  EXPECT_EQ(actions_with(ag, "moe_dispatch").front()->coll, coll_op::all_gather);
  EXPECT_EQ(actions_with(ag, "moe_combine").front()->coll, coll_op::reduce_scatter);
}

TEST(moe_lowering, ep_groups_follow_the_expert_rank_order_beside_tp) {
  // 8 GPUs, TP 2 (ETP 2 by default), EP 4: expert order etp fastest, then ep, edp, pp.
  const rank_grid g{2, 1, 4, 1, 2, 4};
  comm_key k;
  k.group = comm_group::ep;
  k.group_size = 4;
  std::set<int> members;
  for (int r = 0; r < 8; ++r) {
    const group_membership m = step_membership(k, g, r, "moe_dispatch");
    EXPECT_EQ(m.position, r / 2 % 4) << r;
    EXPECT_EQ(m.position, (expert_grid{2, 4, 1, 1}.of(r).ep)) << r;  // the planner's order
    if (m.color == step_membership(k, g, 1, "x").color) members.insert(r);
  }
  EXPECT_EQ(members, (std::set<int>{1, 3, 5, 7}));
}

TEST(moe_lowering, expert_buckets_run_over_the_expert_data_parallel_communicator) {
  // 8 GPUs at EP 4: expert DP of 2, its ranks ep = 4 apart (docs/MOE.md §5).
  const program_variants pv = moe_step(8, 4);
  EXPECT_EQ(pv[overlapped].grid.size(comm_group::edp), 2);
  for (int rank = 0; rank < 8; ++rank) {
    const case_lowering low = lower_rank(pv, rank);
    const auto reduce = actions_with(low, "eb0.grad_reduce");
    ASSERT_EQ(reduce.size(), 1u) << rank;
    EXPECT_EQ(reduce.front()->kind, action_kind::nccl_collective);
    EXPECT_EQ(reduce.front()->comm.group, comm_group::edp);
    EXPECT_EQ(reduce.front()->member.group_size, 2);
    EXPECT_EQ(reduce.front()->member.position, rank / 4);
    EXPECT_EQ(reduce.front()->member.color, rank % 4);
    EXPECT_EQ(stream_of(low, *reduce.front()), "edp");
    // The dense bucket keeps the DP communicator of all 8.
    const auto dense = actions_with(low, "c0.b0.grad_reduce");
    ASSERT_EQ(dense.size(), 1u);
    EXPECT_EQ(dense.front()->comm.group, comm_group::dp);
    EXPECT_EQ(dense.front()->member.group_size, 8);
  }
}

TEST(moe_lowering, one_gpu_moe_step_has_no_all_to_all_but_runs_the_experts) {
  const program_variants pv = moe_step(1, 1);
  const case_lowering low = lower_rank(pv, 0);
  EXPECT_TRUE(actions_with(low, "moe_dispatch").empty());
  const auto fc1 = actions_with(low, "moe_fc1");
  ASSERT_FALSE(fc1.empty());
  EXPECT_EQ(fc1.front()->gemm.batch, 4);  // 128 local experts, 4 at a time (§19.2)
  EXPECT_FALSE(actions_with(low, "moe_fc1_w32").empty());
}

// --- block-scaled GEMMs -----------------------------------------------------------------------

schedule one_gemm(dtype t, int members = 1) {
  schedule s;
  const int c = s.add_stream("compute", stream_role::compute, 0);
  s.add_op("fc1", c, grouped(256, 1024, 2048, members, t), {}, "fc1_fprop");
  return s;
}

TEST(moe_lowering, mxfp8_gemm_carries_ue8m0_block_scales_on_compute_capability_10) {
  const case_lowering low = lower_one(one_gemm(dtype::mxfp8, 2), device(0, 1, 10));
  const lowered_action& a = only_action(low, "fc1");
  EXPECT_EQ(a.gemm.type, dtype::mxfp8);
  EXPECT_EQ(low.buffer(a.x).bytes, 2u * 256 * 2048);  // one byte per element
  ASSERT_TRUE(a.x_scale);
  ASSERT_TRUE(a.w_scale);
  const buffer_request& xs = low.buffer(a.x_scale);
  const buffer_request& ws = low.buffer(a.w_scale);
  EXPECT_EQ(xs.init, buffer_init::constant);
  EXPECT_EQ(xs.fill_byte, ue8m0_one);
  // Rows padded to 128, K / 32 scales per row padded to 4, per member.
  EXPECT_EQ(xs.bytes, 2u * 256 * (2048 / 32));
  EXPECT_EQ(ws.bytes, 2u * 1024 * (2048 / 32));
  EXPECT_EQ(scale_bytes(dtype::mxfp8, 100, 96), 128u * 4);
}

TEST(moe_lowering, block_scales_are_shared_by_every_pass_like_the_operands) {
  schedule s;
  const int c = s.add_stream("compute", stream_role::compute, 0);
  for (const char* pass : {"mb0.L0.", "mb0.L1."})
    s.add_op(std::string(pass) + "moe_fc1", c, grouped(128, 512, 1024, 4, dtype::mxfp8), {},
             "moe_experts");
  const case_lowering low = lower_one(s, device(0, 1, 10));
  const auto& actions = low.variants[overlapped].actions;
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].x_scale.buffer, actions[1].x_scale.buffer);
  EXPECT_EQ(low.buffer(actions[1].w_scale).fill_byte, ue8m0_one);
}

TEST(moe_lowering, an_mxfp8_moe_step_lowers_on_blackwell_with_every_gemm_scaled) {
  const program_variants pv = moe_step(4, 4, {{"dtype", {"mxfp8"}}}, "b200");
  lowering_target t = device(2, 4, 10);
  t.grid = pv[overlapped].grid;
  const case_lowering low = lower_stage(pv, step_options(), cuda_options(), t);
  int gemms = 0;
  for (const lowered_action& a : low.variants[overlapped].actions) {
    if (a.kind != action_kind::gemm || a.gemm.type != dtype::mxfp8) continue;
    ++gemms;
    EXPECT_TRUE(a.x_scale && a.w_scale) << a.name;
  }
  EXPECT_GT(gemms, 0);
  t = device(2, 4, 9);
  t.grid = pv[overlapped].grid;
  EXPECT_THROW((void)lower_stage(pv, step_options(), cuda_options(), t), config_error);
}

TEST(moe_lowering, chunked_block_scaled_gemms_keep_their_scales_inside_the_buffer) {
  // A dense TP 2 step with TE's overlap: GEMMs split along M, each chunk's scales at the 128-row
  // tile of its first row, ending inside the group's scale buffer.
  step_scenario sc;
  sc.model = "gpt3_20b";
  sc.gpu = "b200";
  sc.axes = {{"gpus", {"2"}}, {"tp", {"2"}},   {"layers", {"1"}},
             {"gbs", {"1"}},  {"cdmc", {"1"}}, {"dtype", {"mxfp8"}}};
  const step_spec spec = resolve_step(sc);
  program_variants pv;
  pv[overlapped] = plan_step_case(spec, spec.cases.front()).prog;
  pv[compute_only] = derive_program_variant(pv[overlapped], variant::compute_only);
  lowering_target t = device(1, 2, 10);
  t.grid = pv[overlapped].grid;
  const case_lowering low = lower_stage(pv, step_options(), cuda_options(), t);
  int scaled = 0, chunks = 0;
  for (const lowered_action& a : low.variants[overlapped].actions) {
    if (!a.x_scale) continue;
    ++scaled;
    chunks += a.x_scale.offset > 0;
    EXPECT_LE(a.x_scale.offset + scale_bytes(a.gemm.type, a.gemm.m, a.gemm.k),
              low.buffer(a.x_scale).bytes)
        << a.name;
    EXPECT_EQ(a.x_scale.offset % 16, 0u) << a.name;
  }
  EXPECT_GT(scaled, 0);
  EXPECT_GT(chunks, 0);  // a chunk past the first tile
}

TEST(moe_lowering, nvfp4_packs_two_values_a_byte_with_ue4m3_scales) {
  const case_lowering low = lower_one(one_gemm(dtype::nvfp4), device(0, 1, 10));
  const lowered_action& a = only_action(low, "fc1");
  EXPECT_EQ(low.buffer(a.x).bytes, 256u * 2048 / 2);
  EXPECT_EQ(low.buffer(a.w).bytes, 1024u * 2048 / 2);
  EXPECT_EQ(low.buffer(a.x_scale).fill_byte, ue4m3_one);
  EXPECT_EQ(low.buffer(a.x_scale).bytes, 256u * (2048 / 16));
}

TEST(moe_lowering, block_scaled_gemms_are_refused_naming_the_device_and_dtype) {
  for (dtype t : {dtype::mxfp8, dtype::nvfp4}) {
    try {
      (void)lower_one(one_gemm(t), device(0, 1, 9));
      FAIL() << "expected a config error";
    } catch (const config_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(std::string(to_string(t))), std::string::npos) << what;
      EXPECT_NE(what.find("NVIDIA H100 80GB HBM3 (compute capability 9.0)"), std::string::npos)
          << what;
    }
  }
  // A Blackwell GPU whose cuBLASLt lacks the scale modes.
  try {
    (void)lower_one(one_gemm(dtype::mxfp8), device(0, 1, 10, false));
    FAIL() << "expected a config error";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("CUBLASLT_MATMUL_DESC_A_SCALE_MODE"), std::string::npos);
  }
  // fp8 stays as it was on Hopper.
  EXPECT_NO_THROW((void)lower_one(one_gemm(dtype::fp8), device(0, 1, 9)));
}

TEST(moe_lowering, block_scaled_data_moves_as_bytes_and_is_never_reduced) {
  const auto with = [](coll_op op) {
    schedule s;
    const int m = s.add_stream("comm", stream_role::comm, -1);
    collective_params c;
    c.op = op;
    c.bytes = 4096;
    c.group_size = 4;
    c.type = dtype::mxfp8;
    s.add_op("x", m, c);
    return s;
  };
  const case_lowering low = lower_one(with(coll_op::all_gather), device(0, 4, 10));
  const lowered_action& a = only_action(low, "x");
  EXPECT_EQ(a.type, dtype::mxfp8);
  EXPECT_EQ(a.count, 4096u / 4);       // bytes per rank
  EXPECT_FALSE(low.warnings.empty());  // not verified: no pattern for block-scaled bytes
  EXPECT_THROW((void)lower_one(with(coll_op::reduce_scatter), device(0, 4, 10)), config_error);
}

}  // namespace
}  // namespace ob
