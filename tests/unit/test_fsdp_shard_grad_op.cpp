// PyTorch FSDP's SHARD_GRAD_OP in the training step (docs/FSDP.md §7): a unit gathered by the
// pass that finds it sharded, kept gathered after its forward, resharded after its backward with
// its gradients reduce-scattered then; the next gather in the schedule's order prefetched, across
// virtual stages; checked on the simulated timeline.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model/memory.hpp"
#include "plan/step_stage.hpp"
#include "run/step_run.hpp"
#include "sim/simulator.hpp"
#include "step_test_util.hpp"

namespace ob {
namespace {

constexpr double gib = 1024.0 * 1024.0 * 1024.0;

// Llama 3 8B cut to `layers`, DP 8 over `pp` stages, two micro-batches per pipeline rank and
// stage when pp is 1, four with a pipeline.
step_scenario sgo_scenario(const std::string& fsdp, int pp = 1, int vp = 1, int layers = 3) {
  step_scenario sc;
  sc.model = "llama3_8b";
  sc.cluster = "dgx_h100";
  sc.allow_oom = true;
  sc.axes = {{"gpus", {std::to_string(8 * pp)}},
             {"tp", {"1"}},
             {"pp", {std::to_string(pp)}},
             {"vp", {std::to_string(vp)}},
             {"layers", {std::to_string(layers)}},
             {"gbs", {pp == 1 ? "16" : "32"}},
             {"fsdp", {fsdp}}};
  return sc;
}

struct run : test::stage0_run {
  const schedule& s() const { return prog.stages[0]; }
  const op* find(const std::string& name) const {
    for (const op& o : s().ops)
      if (o.name == name) return &o;
    return nullptr;
  }
  bool on_compute(const op& o) const { return s().streams[o.stream].name == "compute"; }
  // The compute ops of one layer pass ("c0.mb0.L1.", forward or backward): the first and the
  // last of the first (forward) or the last (backward) run of compute ops named so in enqueue
  // order.
  std::pair<const op*, const op*> pass(const std::string& prefix, bool backward) const {
    std::vector<std::pair<const op*, const op*>> runs;
    bool in_run = false;
    for (const op& o : s().ops) {
      if (!on_compute(o)) continue;
      const bool mine = o.name.rfind(prefix, 0) == 0;
      if (mine && !in_run) runs.push_back({&o, &o});
      if (mine) runs.back().second = &o;
      in_run = mine;
    }
    if (runs.empty()) throw std::out_of_range(prefix);
    return backward ? runs.back() : runs.front();
  }
  int count(const std::string& slot) const {
    return static_cast<int>(
        std::count_if(s().ops.begin(), s().ops.end(), [&](const op& o) { return o.slot == slot; }));
  }
};

run simulate_case(const step_scenario& sc) {
  return run{test::simulate_first_case(resolve_step(sc))};
}

// Without a pipeline the schedule runs F0 B0 F1 B1: each forward finds its unit sharded (the
// previous backward resharded it) and gathers it; no backward gathers, since its forward kept
// the unit; Megatron-FSDP (on) gathers before both.
TEST(FsdpShardGradOp, TheBackwardUsesTheGatherOfItsForward) {
  const run t = simulate_case(sgo_scenario("shard_grad_op"));
  for (const std::string mb : {"mb0", "mb1"}) {
    EXPECT_NE(t.find("c0." + mb + ".L1.fsdp_ag"), nullptr) << mb;
    EXPECT_EQ(t.find("c0." + mb + ".L1.fsdp_ag_bwd"), nullptr) << mb;
  }
  EXPECT_EQ(t.count("param_gather"), 3 * 2 + 1);  // three layers, two micro-batches, embeddings
  EXPECT_EQ(simulate_case(sgo_scenario("on")).count("param_gather"), 2 * 3 * 2 + 1);
  // No op of the backward of layer 1 waits on a gather: its first op waits on nothing the DP
  // stream runs.
  const op* first_bwd = t.pass("c0.mb0.L1.", true).first;
  for (int w : first_bwd->waits) EXPECT_NE(t.s().ops[w].slot, "param_gather");
}

// The gathered unit stays until its backward: layer 2's parameters gathered for micro-batch 1's
// forward start only after micro-batch 0's backward of layer 2 (which resharded them) ended.
TEST(FsdpShardGradOp, AUnitIsGatheredAgainOnlyAfterItsBackwardResharded) {
  const run t = simulate_case(sgo_scenario("shard_grad_op"));
  const sim_op_result& ag = t.ops[t.find("c0.mb1.L2.fsdp_ag")->id];
  const op* bwd_last = t.pass("c0.mb0.L2.", true).second;
  EXPECT_GE(ag.start_us, t.ops[bwd_last->id].end_us);
}

// Each unit's gradients reduce-scatter after each of its backward passes, on their own stream,
// in the gradient dtype: fp32 moves twice bf16's bytes.
TEST(FsdpShardGradOp, EveryBackwardReduceScattersItsGradientsInTheirDtype) {
  const run t = simulate_case(sgo_scenario("shard_grad_op"));
  EXPECT_EQ(t.count("grad_reduce"), 3 * 2 + 1);  // and the embeddings' once
  for (const std::string mb : {"mb0", "mb1"})
    for (int l = 0; l < 3; ++l) {
      const std::string p = "c0." + mb + ".L" + std::to_string(l) + ".";
      const op* rs = t.find(p + "fsdp_rs");
      ASSERT_NE(rs, nullptr) << p;
      EXPECT_EQ(t.s().streams[rs->stream].name, "fsdp_rs");
      EXPECT_GE(t.ops[rs->id].start_us, t.ops[t.pass(p, true).second->id].end_us) << p;
    }
  step_scenario bf16 = sgo_scenario("shard_grad_op");
  bf16.axes.push_back({"grad_reduce_in_fp32", {"off"}});
  const run b = simulate_case(bf16);
  const auto bytes = [](const run& r) {
    return r.find("c0.mb0.L1.fsdp_rs")->as<collective_params>().bytes;
  };
  EXPECT_EQ(bytes(t), 2 * bytes(b));
  EXPECT_EQ(t.find("c0.mb0.L1.fsdp_ag")->as<collective_params>().bytes,
            b.find("c0.mb0.L1.fsdp_ag")->as<collective_params>().bytes);  // bf16 weights
}

// With two virtual stages of one layer each, the forward of chunk 0 prefetches chunk 1's gather
// (the next pass in the schedule that gathers): it is enqueued before chunk 0's layer computes
// and runs beside it. Megatron-FSDP (on) prefetches within a virtual stage only.
TEST(FsdpShardGradOp, ThePrefetchCrossesVirtualStages) {
  const run t = simulate_case(sgo_scenario("shard_grad_op", 2, 2, 4));
  const op* ag = t.find("c1.mb0.L0.fsdp_ag");
  ASSERT_NE(ag, nullptr);
  const auto [first, last] = t.pass("c0.mb0.L0.", false);
  EXPECT_LT(ag->id, first->id);
  EXPECT_LT(t.ops[ag->id].start_us, t.ops[last->id].end_us);
  const run on = simulate_case(sgo_scenario("on", 2, 2, 4));
  EXPECT_GT(on.find("c1.mb0.L0.fsdp_ag")->id, on.pass("c0.mb0.L0.", false).second->id);
}

// Interleaved, the warm-up runs several forwards of a chunk before its first backward: one
// gather serves them all; a backward that follows another backward of the same unit (its
// forward came before the first) gathers again.
TEST(FsdpShardGradOp, TheScheduleDecidesWhichPassesGather) {
  const run t = simulate_case(sgo_scenario("shard_grad_op", 2, 2, 4));
  EXPECT_NE(t.find("c0.mb0.L0.fsdp_ag"), nullptr);
  EXPECT_EQ(t.find("c0.mb1.L0.fsdp_ag"), nullptr);  // warm-up: still gathered
  EXPECT_NE(t.find("c1.mb1.L0.fsdp_ag_bwd"), nullptr);
  EXPECT_EQ(t.find("c1.mb0.L0.fsdp_ag_bwd"), nullptr);
}

// Memory (docs/FSDP.md §7): the shards as Megatron-FSDP's, but every layer of the stage held
// gathered in 16 bits (nothing reshards before the first backward, which follows a forward of
// every chunk), the embeddings whole, two layers' gradients and the output layer's whole.
TEST(FsdpShardGradOp, HoldsEveryLayerGatheredBesideTheShards) {
  step_scenario sc = sgo_scenario("shard_grad_op");
  sc.axes.erase(sc.axes.begin() + 4);  // every layer
  const memory_parts mem = resolve_step(sc).cases.at(0).memory.gib;
  const model_spec m = load_model_spec("llama3_8b");
  const double layer = static_cast<double>(detail::layer_params(m, 1));
  const double vocab = static_cast<double>(m.vocab_size * m.hidden);
  const double params = 32 * layer + 2 * vocab;
  EXPECT_NEAR(mem.weights * gib, params * 2 / 8 + 32 * layer * 2 + 2 * vocab * 2, 1e3);
  EXPECT_NEAR(mem.gradients * gib, params * 4 / 8 + (2 * layer + vocab) * 4, 1e3);
  EXPECT_NEAR(mem.optimizer * gib, params * 12 / 8, 1e3);
}

TEST(FsdpShardGradOp, TheAxisNamesTheStrategyAndRefusesOthers) {
  const step_spec spec = resolve_step(sgo_scenario("shard_grad_op"));
  EXPECT_TRUE(spec.cases.at(0).c.cfg.fsdp);
  EXPECT_TRUE(spec.cases.at(0).c.cfg.fsdp_shard_grad_op);
  const step_spec on = resolve_step(sgo_scenario("on"));
  EXPECT_TRUE(on.cases.at(0).c.cfg.fsdp);
  EXPECT_FALSE(on.cases.at(0).c.cfg.fsdp_shard_grad_op);
  EXPECT_EQ(spec.cases.at(0).config.at("fsdp"), "shard_grad_op");  // the record names it
  EXPECT_EQ(on.cases.at(0).config.at("fsdp"), true);               // as before
  const std::string msg = test::resolve_message(sgo_scenario("full_shard"));
  EXPECT_NE(msg.find("expected on, off or shard_grad_op"), std::string::npos) << msg;
}

}  // namespace
}  // namespace ob
