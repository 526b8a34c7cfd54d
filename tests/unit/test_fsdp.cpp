// Megatron-FSDP in the training step (docs/FSDP.md): each layer's parameters all-gathered before
// its forward and backward, the next layer's gather beside the current layer's compute, each
// layer's gradients reduce-scattered beside the layers after it, and the memory it saves,
// checked on the simulated timeline.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>

#include "model/memory.hpp"
#include "plan/step_stage.hpp"
#include "run/step_run.hpp"
#include "sim/simulator.hpp"
#include "step_test_util.hpp"

namespace ob {
namespace {

constexpr double gib = 1024.0 * 1024.0 * 1024.0;

step_scenario fsdp_scenario(const std::string& fsdp) {
  step_scenario sc;
  sc.model = "llama3_8b";
  sc.cluster = "dgx_h100";
  sc.allow_oom = true;
  sc.axes = {{"gpus", {"8"}}, {"tp", {"1"}}, {"layers", {"3"}}, {"gbs", {"16"}}, {"fsdp", {fsdp}}};
  return sc;
}

struct timeline : test::stage0_run {
  const op* find(const std::string& name) const {
    for (const op& o : prog.stages[0].ops)
      if (o.name == name) return &o;
    return nullptr;
  }
  const sim_op_result& at(const std::string& name) const {
    const op* o = find(name);
    if (o == nullptr) throw std::out_of_range(name);
    return ops[o->id];
  }
  // The compute ops named `prefix` ("c0.mb0.L1.") enqueued before `before` (op id): first start,
  // last end. A layer's forward and backward share the prefix; the backward comes later.
  std::pair<double, double> span(const std::string& prefix,
                                 int before = std::numeric_limits<int>::max()) const {
    double lo = std::numeric_limits<double>::max(), hi = 0;
    const schedule& s = prog.stages[0];
    for (const op& o : s.ops)
      if (o.id < before && o.name.rfind(prefix, 0) == 0 && s.streams[o.stream].name == "compute") {
        lo = std::min(lo, ops[o.id].start_us);
        hi = std::max(hi, ops[o.id].end_us);
      }
    return {lo, hi};
  }
  // The first compute op named `prefix` (a prefetched gather of that layer comes earlier).
  int first_id(const std::string& prefix) const {
    const schedule& s = prog.stages[0];
    for (const op& o : s.ops)
      if (o.name.rfind(prefix, 0) == 0 && s.streams[o.stream].name == "compute") return o.id;
    throw std::out_of_range(prefix);
  }
  int count_slot(const std::string& slot) const {
    return static_cast<int>(std::count_if(prog.stages[0].ops.begin(), prog.stages[0].ops.end(),
                                          [&](const op& o) { return o.slot == slot; }));
  }
};

timeline simulate_case(const step_scenario& sc) {
  return timeline{test::simulate_first_case(resolve_step(sc))};
}

TEST(Fsdp, EachLayerWaitsForItsGatherAndTheNextGatherRunsBesideIt) {
  const timeline t = simulate_case(fsdp_scenario("on"));
  // Per micro-batch: 3 layers gathered for the forward and 3 for the backward, plus the
  // embedding and output layer once; no distributed-optimizer bucket gathers.
  EXPECT_EQ(t.count_slot("param_gather"), 2 * (3 + 3) + 1);
  ASSERT_NE(t.find("c0.mb0.L1.fsdp_ag"), nullptr);
  for (const std::string mb : {"c0.mb0.", "c0.mb1."}) {
    const auto l0 = t.span(mb + "L0."), l1 = t.span(mb + "L1."), l2 = t.span(mb + "L2.");
    EXPECT_GT(l1.first, l0.first) << mb;
    EXPECT_GT(l2.first, l1.first) << mb;
  }
  // The first micro-batch: layer 1's gather ends before layer 1 starts and began while layer 0
  // was computing (the prefetch), not after it.
  const auto l0 = t.span("c0.mb0.L0.", t.first_id("c0.mb0.L1."));
  const auto l1 = t.span("c0.mb0.L1.", t.first_id("c0.mb0.L2."));
  const sim_op_result& ag1 = t.at("c0.mb0.L1.fsdp_ag");
  EXPECT_LE(ag1.end_us, l1.first);
  EXPECT_LT(ag1.start_us, l0.second);
  EXPECT_GE(ag1.start_us, t.at("c0.mb0.L0.fsdp_ag").end_us);  // one DP stream, in order
}

TEST(Fsdp, GradientsReduceScatterPerLayerBesideTheEarlierLayersBackward) {
  const timeline t = simulate_case(fsdp_scenario("on"));
  // Every layer of every micro-batch, plus the embedding and output layer once at the end.
  EXPECT_EQ(t.count_slot("grad_reduce"), 2 * 3 + 1);
  const op* rs = t.find("c0.mb0.L2.fsdp_rs");
  ASSERT_NE(rs, nullptr);
  EXPECT_EQ(t.prog.stages[0].streams[rs->stream].name, "fsdp_rs");
  EXPECT_EQ(rs->as<collective_params>().op, coll_op::reduce_scatter);
  // Layer 2's first reduce-scatter (mb0's backward) starts after layer 2's backward and runs
  // while layer 1's backward computes.
  const auto& r = t.ops[rs->id];
  const auto b1 = t.span("c0.mb0.L1.", t.first_id("c0.mb1."));
  EXPECT_LT(r.start_us, b1.second);
  EXPECT_GT(r.end_us, r.start_us);
}

TEST(Fsdp, OffKeepsTheDistributedOptimizersBuckets) {
  const timeline t = simulate_case(fsdp_scenario("off"));
  EXPECT_EQ(t.find("c0.mb0.L1.fsdp_ag"), nullptr);
  EXPECT_EQ(t.find("fsdp_ag_embedding"), nullptr);
  EXPECT_GT(t.count_slot("grad_reduce"), 0);
}

TEST(Fsdp, ShardsWeightsGradientsAndOptimizerOverDp) {
  step_scenario sc_on = fsdp_scenario("on"), sc_off = fsdp_scenario("off");
  sc_on.axes.erase(sc_on.axes.begin() + 2);    // every layer: the embeddings, held whole, are
  sc_off.axes.erase(sc_off.axes.begin() + 2);  // a small share of the weights
  const step_spec on = resolve_step(sc_on), off = resolve_step(sc_off);
  const auto mem = [](const step_spec& s) { return s.cases.at(0).memory.gib; };
  const memory_parts a = mem(on), b = mem(off);
  EXPECT_LT(a.weights, 0.6 * b.weights);  // 1/8 of them, two layers and the embeddings whole
  EXPECT_LT(a.gradients, 0.6 * b.gradients);
  EXPECT_NEAR(a.optimizer, b.optimizer, 1e-9);  // the distributed optimizer shards it already
}

// What Megatron-FSDP holds besides the shards (docs/FSDP.md §2), on the whole Llama 3 8B at DP 8:
// fsdp_double_buffer's two layers of parameters (16-bit, or fp8 with fp8_param_gather) and two
// of gradients; the embedding and the output layer, no FSDP unit, gathered whole in 16 bits;
// the output layer's whole gradient; the fp32 gradient copy of 16-bit gradients left out, as it
// lives only between the backward and the next zero_grad.
TEST(Fsdp, HoldsTwoLayersAndTheEmbeddingsWholeBesideTheShards) {
  step_scenario sc = fsdp_scenario("on");
  sc.axes.erase(sc.axes.begin() + 2);  // every layer: the embeddings weigh as they do
  const auto mem = [&](const std::string& fp32_grads, const std::string& fp8_params) {
    step_scenario x = sc;
    x.axes.push_back({"grad_reduce_in_fp32", {fp32_grads}});
    x.axes.push_back({"dtype", {"fp8"}});
    x.axes.push_back({"fp8_param_gather", {fp8_params}});
    return resolve_step(x).cases.at(0).memory.gib;
  };
  const model_spec m = load_model_spec("llama3_8b");
  const double layer = static_cast<double>(detail::layer_params(m, 1));
  const double vocab = static_cast<double>(m.vocab_size * m.hidden);
  const double params = 32 * layer + 2 * vocab;
  const memory_parts fp8 = mem("off", "on"), bf16 = mem("on", "off");
  EXPECT_NEAR(fp8.weights * gib, params / 8 + 2 * layer + 2 * vocab * 2, 1e3);
  EXPECT_NEAR(bf16.weights * gib, params * 3 / 8 + 2 * layer * 2 + 2 * vocab * 2, 1e3);
  EXPECT_NEAR(fp8.gradients * gib, params * 2 / 8 + (2 * layer + vocab) * 2, 1e3);
  EXPECT_NEAR(bf16.gradients * gib, params * 4 / 8 + (2 * layer + vocab) * 4, 1e3);
  EXPECT_NEAR(fp8.optimizer * gib, params * 12 / 8, 1e3);  // no fp32 gradient copy
  EXPECT_NEAR(bf16.optimizer * gib, params * 12 / 8, 1e3);
}

// The fp32 gradient copy follows the backward, when no activation is held: it costs only what
// it needs beyond them. With a 128-token sequence the activations are smaller than the copy, and
// the optimizer's share grows by the difference (12 bytes a parameter plus the copy's excess).
TEST(Fsdp, TheGradientCopyCountsOnlyBeyondTheActivations) {
  step_scenario sc = fsdp_scenario("on");
  sc.axes.erase(sc.axes.begin() + 2);
  sc.axes.push_back({"seq", {"128"}});
  sc.axes.push_back({"grad_reduce_in_fp32", {"off"}});
  const memory_parts m = resolve_step(sc).cases.at(0).memory.gib;
  const model_spec spec = load_model_spec("llama3_8b");
  const double params = 32 * static_cast<double>(detail::layer_params(spec, 1)) +
                        2 * static_cast<double>(spec.vocab_size * spec.hidden);
  ASSERT_LT(m.activations * gib, params * 4 / 8);
  EXPECT_NEAR((m.optimizer + m.activations) * gib, params * 16 / 8, 1e3);
}

}  // namespace
}  // namespace ob
