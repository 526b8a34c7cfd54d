// A MoE model's routed experts in gradient buckets of their own, reduced and gathered over the
// expert-data-parallel group (docs/MOE.md §5), checked on the simulated timeline: the group's
// size, span and bytes, the dense buckets still over DP x CP, no expert reduction with edp = 1,
// and when each expert bucket launches.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "model/model_spec.hpp"
#include "step_test_util.hpp"

namespace ob {
namespace {

using test::timeline;

// Qwen3-30B-A3B (128 experts of 768, hidden 2048, every layer MoE) on 8-GPU H100 nodes, two
// layers, two micro-batches per rank, 16-bit gradients.
step_scenario experts_on(const char* gpus, const char* ep, std::vector<sweep_axis> more = {}) {
  step_scenario sc;
  sc.model = "qwen3_30b_a3b";
  sc.cluster = "dgx_h100";
  sc.allow_oom = true;
  const int n = std::stoi(gpus);
  sc.axes = {{"gpus", {gpus}},
             {"ep", {ep}},
             {"layers", {"2"}},
             {"gbs", {std::to_string(2 * n)}},
             {"grad_reduce_in_fp32", {"off"}}};
  sc.axes.insert(sc.axes.end(), more.begin(), more.end());
  return sc;
}

// One layer's routed experts on one rank: experts / ep of them, gate, up and down projections.
std::int64_t local_expert_params(int ep) {
  const model_spec m = load_model_spec("qwen3_30b_a3b");
  return static_cast<std::int64_t>(m.moe.experts / ep) * m.hidden * 3 * m.moe.ffn_hidden;
}

const collective_params& coll(const timeline& t, const std::string& name) {
  return t.named(0, name).as<collective_params>();
}

const std::string& stream_of(const timeline& t, const std::string& name) {
  return t.prog.stages[0].streams[static_cast<std::size_t>(t.named(0, name).stream)].name;
}

bool has_group(const timeline& t, comm_group g) {
  const auto& ops = t.prog.stages[0].ops;
  return std::any_of(ops.begin(), ops.end(), [&](const op& o) {
    return o.kind() == op_kind::collective && o.as<collective_params>().group == g;
  });
}

// EP 8 fills a node, so the expert DP group of 64 / 8 = 8 ranks has one GPU in each of 8 nodes;
// its bucket holds both layers' local experts (under the 128 M-element bucket), 16-bit.
TEST(ExpertDp, ExpertBucketsReduceAndGatherOverTheExpertDpGroup) {
  const step_spec spec = resolve_step(experts_on("64", "8"));
  const timeline t = test::simulate_spec(spec);
  const auto expert_bytes = static_cast<std::uint64_t>(2 * local_expert_params(8) * 2);
  for (const char* name : {"c0.eb0.grad_reduce", "c0.eb0.param_ag"}) {
    const collective_params& c = coll(t, name);
    EXPECT_EQ(c.group, comm_group::edp) << name;
    EXPECT_EQ(c.group_size, 8) << name;
    EXPECT_EQ(c.nodes, 8) << name;
    EXPECT_EQ(c.bytes, expert_bytes) << name;
    EXPECT_EQ(stream_of(t, name), "edp") << name;
  }
  EXPECT_EQ(coll(t, "c0.eb0.grad_reduce").op, coll_op::reduce_scatter);
  EXPECT_EQ(coll(t, "c0.eb0.param_ag").op, coll_op::all_gather);
  EXPECT_EQ(t.find(0, "c0.eb1.grad_reduce"), nullptr);  // one expert bucket
  // The dense bucket (attention, router, norms, embeddings) still over DP x CP's 64 ranks.
  const collective_params& dense = coll(t, "c0.b0.grad_reduce");
  EXPECT_EQ(dense.group, comm_group::dp);
  EXPECT_EQ(dense.group_size, 64);
  EXPECT_EQ(dense.nodes, 8);
  EXPECT_EQ(stream_of(t, "c0.b0.grad_reduce"), "dp");
  // Between them the two buckets hold every parameter of the rank, each once.
  EXPECT_EQ(
      (dense.bytes + expert_bytes) / 2,
      static_cast<std::uint64_t>(plan_step_case(spec, spec.cases.at(0)).params_per_rank_stage0));
}

// With EP 8 on 8 GPUs every rank holds experts no other rank has: edp = 1, no expert reduction
// or gather at all, and the dense bucket moves the same bytes as on 64 GPUs.
TEST(ExpertDp, NoExpertReductionWhenEdpIsOne) {
  const timeline one = test::simulate(experts_on("8", "8"));
  EXPECT_FALSE(has_group(one, comm_group::edp));
  for (const op& o : one.prog.stages[0].ops) EXPECT_EQ(o.name.find(".eb"), std::string::npos);
  const timeline many = test::simulate(experts_on("64", "8"));
  EXPECT_EQ(coll(one, "c0.b0.grad_reduce").bytes, coll(many, "c0.b0.grad_reduce").bytes);
  EXPECT_EQ(coll(one, "c0.b0.grad_reduce").group_size, 8);
}

// One layer's experts per bucket: each expert bucket's reduce-scatter is issued once its layer's
// last backward has run (on the last micro-batch), beside the next layer's backward; the
// forward's first layer of a bucket waits for that bucket's gather.
// The distributed optimizer shards each buffer over the group that reduces it: a rank steps
// 1/64 of the dense parameters and 1/8 of its experts at edp 8, all of its experts at edp 1.
TEST(ExpertDp, TheOptimizerStepsItsShardOfEachBuffer) {
  const auto shard = [](const timeline& t) {
    return t.named(0, "optimizer_step").as<elementwise_params>().flops / 10;
  };
  const timeline wide = test::simulate_spec(resolve_step(experts_on("64", "8")));
  const double dense = static_cast<double>(coll(wide, "c0.b0.grad_reduce").bytes) / 2;
  const double experts = static_cast<double>(coll(wide, "c0.eb0.grad_reduce").bytes) / 2;
  EXPECT_NEAR(shard(wide), dense / 64 + experts / 8, 1.0);
  const timeline one = test::simulate_spec(resolve_step(experts_on("8", "8")));
  EXPECT_NEAR(shard(one), dense / 8 + static_cast<double>(2 * local_expert_params(8)), 1.0);
  EXPECT_GT(shard(one), 7 * shard(wide));  // the experts dominate, unsharded at edp 1
}

TEST(ExpertDp, AnExpertBucketReducesAfterItsLayersLastBackward) {
  const timeline t = test::simulate(experts_on("64", "8", {{"bucket_size", {"1000000"}}}));
  const auto& ops = t.prog.stages[0].ops;
  const auto ends_of = [&](const std::string& prefix) {
    double first_start = 1e300, last_end = 0;
    for (const op& o : ops)
      if (o.name.starts_with(prefix) && o.kind() != op_kind::collective) {
        first_start = std::min(first_start, t.ops[0][o.id].start_us);
        last_end = std::max(last_end, t.ops[0][o.id].end_us);
      }
    return std::pair{first_start, last_end};
  };
  // Bucket 0 holds layer 1's experts (the backward's first), bucket 1 layer 0's.
  ASSERT_NE(t.find(0, "c0.eb1.grad_reduce"), nullptr);
  EXPECT_EQ(t.find(0, "c0.eb2.grad_reduce"), nullptr);
  EXPECT_EQ(coll(t, "c0.eb0.grad_reduce").bytes,
            static_cast<std::uint64_t>(local_expert_params(8) * 2));
  const auto [l1_start, l1_end] = ends_of("c0.mb1.L1.");
  const auto [l0_start, l0_end] = ends_of("c0.mb1.L0.");
  const sim_op_result& eb0 = t.at(0, "c0.eb0.grad_reduce");
  EXPECT_GE(eb0.start_us, l1_end);
  EXPECT_LT(eb0.start_us, l0_end);  // it runs beside layer 0's backward
  EXPECT_GE(t.at(0, "c0.eb1.grad_reduce").start_us, l0_end);
  // No earlier micro-batch starts a reduction.
  EXPECT_GT(eb0.start_us, ends_of("c0.mb0.L0.").second);
  // The forward: layer 1's first op waits for bucket 0's gather, layer 0's for bucket 1's.
  EXPECT_GE(ends_of("c0.mb0.L0.").first, t.at(0, "c0.eb1.param_ag").end_us);
  EXPECT_GE(ends_of("c0.mb0.L1.").first, t.at(0, "c0.eb0.param_ag").end_us);
  (void)l1_start;
  (void)l0_start;
}

// The expert group's one GPU a node pushes the bucket through one NIC where the 64-rank DP ring
// spreads it over the node's eight: per byte the expert gather is several times slower, and
// what the optimizer waits for of it is DP time in the breakdown.
TEST(ExpertDp, ExpertDpAcrossNodesIsSlowerPerByteAndCountsAsDpExposure) {
  const step_scenario sc = experts_on("64", "8");
  const timeline t = test::simulate(sc);
  const auto per_byte = [&](const std::string& name) {
    return t.length(0, name) / static_cast<double>(coll(t, name).bytes);
  };
  EXPECT_GT(per_byte("c0.eb0.param_ag"), 4 * per_byte("c0.b0.param_ag"));
  // The last expert reduction ends after the backward's last compute op: the optimizer's first
  // pass waits for it, and the breakdown charges that wait to DP.
  double compute_end = 0;
  for (const op& o : t.prog.stages[0].ops)
    if (o.slot != "optimizer" && !o.is_comm() &&
        t.prog.stages[0].streams[static_cast<std::size_t>(o.stream)].role == stream_role::compute)
      compute_end = std::max(compute_end, t.ops[0][o.id].end_us);
  const double tail_us = t.at(0, "c0.eb0.grad_reduce").end_us - compute_end;
  ASSERT_GT(tail_us, 0);
  const step_record r = test::run_sim_steps(sc).front();
  EXPECT_GE(r.breakdown_ms.dp_exposed * 1000, 0.9 * tail_us);
}

// With EP 1 Megatron marks no parameter expert-parallel: the experts stay in the dense buckets,
// which between them reduce every parameter of the rank over DP.
TEST(ExpertDp, WithoutEpTheExpertsStayInTheDenseBuckets) {
  const step_spec spec = resolve_step(experts_on("16", "1"));
  const timeline t = test::simulate_spec(spec);
  EXPECT_FALSE(has_group(t, comm_group::edp));
  std::uint64_t reduced = 0;
  for (const op& o : t.prog.stages[0].ops)
    if (o.slot == "grad_reduce") {
      EXPECT_EQ(o.as<collective_params>().group, comm_group::dp) << o.name;
      reduced += o.as<collective_params>().bytes;
    }
  EXPECT_EQ(reduced / 2, static_cast<std::uint64_t>(
                             plan_step_case(spec, spec.cases.at(0)).params_per_rank_stage0));
  EXPECT_GT(reduced / 2, static_cast<std::uint64_t>(2 * local_expert_params(1)));
}

// A dense model's plan has no expert DP stream or op.
TEST(ExpertDp, DenseModelsKeepTheirBuckets) {
  step_scenario sc;
  sc.model = "llama3_8b";
  sc.cluster = "dgx_h100";
  sc.allow_oom = true;
  sc.axes = {{"gpus", {"16"}}, {"layers", {"2"}}, {"gbs", {"32"}}};
  const timeline t = test::simulate(sc);
  EXPECT_FALSE(has_group(t, comm_group::edp));
  for (const stream& s : t.prog.stages[0].streams) EXPECT_NE(s.name, "edp");
  EXPECT_EQ(coll(t, "c0.b0.grad_reduce").group, comm_group::dp);
}

}  // namespace
}  // namespace ob
