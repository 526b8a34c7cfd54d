// Activation offloading to host memory (docs/FSDP.md §5): each offloaded layer's copy on the
// offload stream after the layer's forward, the forward waiting for it L - N layers later, its
// reload before its backward, the backward waiting for it when the host link is slow, the
// refusals Megatron-Core makes, and the memory it frees.
#include <gtest/gtest.h>

#include <string>

#include "base/error.hpp"
#include "model/cluster.hpp"
#include "model/memory.hpp"
#include "run/step_run.hpp"
#include "sim/simulator.hpp"
#include "step_test_util.hpp"

namespace ob {
namespace {

step_scenario offload_scenario(const std::string& layers, const std::string& recompute = "none") {
  step_scenario sc;
  sc.model = "llama3_8b";
  sc.cluster = "dgx_h100";
  sc.allow_oom = true;
  sc.axes = {{"gpus", {"8"}},
             {"tp", {"1"}},
             {"layers", {"4"}},
             {"gbs", {"8"}},
             {"recompute", {recompute}},
             {"cpu_offload_layers", {layers}}};
  return sc;
}

struct run : test::stage0_run {
  const op& find(const std::string& name) const {
    for (const op& o : prog.stages[0].ops)
      if (o.name == name) return o;
    throw std::out_of_range(name);
  }
  const sim_op_result& at(const std::string& name) const { return ops[find(name).id]; }
  // The first and last compute op of a layer's pass: "c0.mb0.L1." and whether the backward.
  std::pair<double, double> pass(const std::string& prefix, bool backward) const {
    const schedule& s = prog.stages[0];
    double lo = 1e300, hi = 0;
    bool seen_bwd = false;
    for (const op& o : s.ops) {
      if (o.name.rfind(prefix, 0) != 0 || s.streams[o.stream].name != "compute") continue;
      const bool bwd = o.slot.find("bwd") != std::string::npos ||
                       o.slot.find("dgrad") != std::string::npos ||
                       o.slot.find("wgrad") != std::string::npos;
      seen_bwd = seen_bwd || bwd;
      if (seen_bwd != backward) continue;
      lo = std::min(lo, ops[o.id].start_us);
      hi = std::max(hi, ops[o.id].end_us);
    }
    return {lo, hi};
  }
};

run simulate(const step_scenario& sc, double host_gbps = 0) {
  step_spec spec = resolve_step(sc);
  if (host_gbps > 0) spec.cases.at(0).cluster.host_link_gbps = host_gbps;
  return run{test::simulate_first_case(spec)};
}

// TE's default synchronizer (docs/FSDP.md §5), 2 of 4 layers offloaded: layer i's copy starts
// after its forward, on the one offload stream; layer 2 + i's forward waits for it; layer i's
// reload is issued before the backward of layer 1 + i (layer 1's before layer 2's) and ends
// before layer i's backward.
TEST(Offload, CopiesRunOnTheirOwnStreamAfterTheForwardAndBeforeTheBackward) {
  const run r = simulate(offload_scenario("2"));
  const schedule& s = r.prog.stages[0];
  const op& d2h = r.find("c0.mb0.L1.offload");
  const op& h2d = r.find("c0.mb0.L1.reload");
  EXPECT_EQ(s.streams[d2h.stream].name, "offload");
  EXPECT_EQ(h2d.stream, d2h.stream);
  EXPECT_EQ(d2h.slot, "activation_offload");
  // Layers 2 and 3 stay on the GPU.
  EXPECT_THROW(r.find("c0.mb0.L2.offload"), std::out_of_range);
  const auto f1 = r.pass("c0.mb0.L1.", false), b1 = r.pass("c0.mb0.L1.", true);
  const auto f2 = r.pass("c0.mb0.L2.", false), b2 = r.pass("c0.mb0.L2.", true);
  EXPECT_GE(r.at("c0.mb0.L1.offload").start_us, f1.second);  // after its forward
  EXPECT_LT(r.at("c0.mb0.L1.offload").start_us, f2.second);  // beside the next layer
  EXPECT_GE(r.at("c0.mb0.L1.reload").start_us, r.at("c0.mb0.L1.offload").end_us);
  EXPECT_LT(r.at("c0.mb0.L1.reload").start_us, b2.second);  // issued before layer 2's backward
  EXPECT_LE(r.at("c0.mb0.L1.reload").end_us, b1.first);     // before its own backward
  EXPECT_LT(r.at("c0.mb0.L0.reload").start_us, b1.second);  // beside layer 1's backward
}

// The forward waits for a copy only L - N layers later: with 1 of 4 layers offloaded over a slow
// link, layer 2's forward runs while layer 0's copy does, and layer 3's waits for it to end.
TEST(Offload, TheForwardWaitsForACopyOnlyWhenItsMemoryIsNeeded) {
  const run slow = simulate(offload_scenario("1"), 0.5);  // 0.5 GB/s per direction
  const sim_op_result& copy = slow.at("c0.mb0.L0.offload");
  const auto f2 = slow.pass("c0.mb0.L2.", false), f3 = slow.pass("c0.mb0.L3.", false);
  EXPECT_LT(f2.first, copy.end_us);
  EXPECT_GE(f3.first, copy.end_us);
}

TEST(Offload, TheBackwardWaitsForTheReloadWhenTheHostLinkIsSlow) {
  const run fast = simulate(offload_scenario("2"));
  const run slow = simulate(offload_scenario("2"), 0.5);  // 0.5 GB/s per direction
  const auto b1 = slow.pass("c0.mb0.L1.", true), b0 = slow.pass("c0.mb0.L0.", true);
  // The slow reload of layer 0 outlasts layer 1's backward: layer 0's backward starts when it
  // ends, not when layer 1's backward ends.
  const sim_op_result& reload0 = slow.at("c0.mb0.L0.reload");
  EXPECT_GT(reload0.end_us, b1.second);
  EXPECT_NEAR(b0.first, reload0.end_us, 0.05 * (reload0.end_us - reload0.start_us));
  const double slow_end = slow.ops.back().end_us, fast_end = fast.ops.back().end_us;
  EXPECT_GT(slow_end, fast_end);
  // The copy's duration is the layer's activations over the link: halving it doubles it.
  const run slower = simulate(offload_scenario("2"), 0.25);
  const sim_op_result& a = slow.at("c0.mb0.L1.offload");
  const sim_op_result& b = slower.at("c0.mb0.L1.offload");
  EXPECT_NEAR(b.end_us - b.start_us, 2 * (a.end_us - a.start_us), 1e-6 * (b.end_us - b.start_us));
}

// A copy reaches only a share of the host link, a different one each way (the cluster file's
// host_link_efficiency, docs/FSDP.md §5.4): the offload lasts the layer's bytes over the d2h
// share, the reload over the h2d share; a cluster without it keeps the whole link.
TEST(Offload, EachDirectionReachesItsOwnShareOfTheHostLink) {
  const auto len = [](const run& r, const std::string& name) {
    return r.at(name).end_us - r.at(name).start_us;
  };
  const run whole = simulate(offload_scenario("2"));
  step_spec spec = resolve_step(offload_scenario("2"));
  spec.cases.at(0).cluster.host_link_d2h_efficiency = 0.5;
  spec.cases.at(0).cluster.host_link_h2d_efficiency = 0.8;
  const run shared{test::simulate_first_case(spec)};
  for (const char* l : {"c0.mb0.L0.", "c0.mb0.L1."}) {
    const std::string d2h = std::string(l) + "offload", h2d = std::string(l) + "reload";
    EXPECT_NEAR(len(whole, d2h), len(whole, h2d), 1e-6 * len(whole, d2h));
    EXPECT_NEAR(len(shared, d2h), len(whole, d2h) / 0.5, 1e-6 * len(shared, d2h));
    EXPECT_NEAR(len(shared, h2d), len(whole, h2d) / 0.8, 1e-6 * len(shared, h2d));
  }
}

// The NVL72 cluster files carry both shares with their sources; a cluster file without them (DGX
// H100's PCIe) keeps the whole link.
TEST(Offload, ClusterFilesGiveTheSharesOrNone) {
  for (const char* name : {"gb200_nvl72", "gb300_nvl72"}) {
    const cluster_spec c = load_cluster(name);
    EXPECT_LT(c.host_link_d2h_efficiency, c.host_link_h2d_efficiency) << name;
    EXPECT_GT(c.host_link_d2h_efficiency, 0) << name;
    EXPECT_LT(c.host_link_h2d_efficiency, 1) << name;
  }
  const cluster_spec pcie = load_cluster("dgx_h100");
  EXPECT_EQ(pcie.host_link_d2h_efficiency, 1);
  EXPECT_EQ(pcie.host_link_h2d_efficiency, 1);
}

// The d2h share decides when the forward waits: 1 of 4 layers offloaded, layer 3's forward
// waits for layer 0's copy; over a link whose d2h share makes the copy outlast layers 1 and 2,
// layer 3's forward starts when the copy ends, and the step gets longer.
TEST(Offload, ASlowD2hShareHoldsTheForwardBack) {
  step_spec spec = resolve_step(offload_scenario("1"));
  spec.cases.at(0).cluster.host_link_gbps = 4;  // GB/s per direction
  const run whole{test::simulate_first_case(spec)};
  spec.cases.at(0).cluster.host_link_d2h_efficiency = 0.25;
  const run slow{test::simulate_first_case(spec)};
  const sim_op_result& copy = slow.at("c0.mb0.L0.offload");
  const auto f3 = slow.pass("c0.mb0.L3.", false), f3_whole = whole.pass("c0.mb0.L3.", false);
  ASSERT_GT(copy.end_us, f3_whole.first);  // the copy outlasts the forward it would hide in
  EXPECT_NEAR(f3.first, copy.end_us, 0.05 * (copy.end_us - copy.start_us));
  EXPECT_GT(slow.ops.back().end_us, whole.ops.back().end_us);
}

// The copies read and write HBM: a GEMM running beside one is slowed as beside a collective
// (docs/ARCHITECTURE.md §5.1, item 8). Layer 0's copy (tens of ms over PCIe) runs through layer
// 1's forward; without offloading the same GEMM runs alone.
TEST(Offload, CopiesSlowTheGemmsBesideThemThroughHbm) {
  const std::string fc1 = "c0.mb0.L1.fc1_fprop";
  const auto len = [&](const run& r) { return r.at(fc1).end_us - r.at(fc1).start_us; };
  const run r = simulate(offload_scenario("2"));
  const sim_op_result& copy = r.at("c0.mb0.L0.offload");
  ASSERT_LE(copy.start_us, r.at(fc1).start_us);
  ASSERT_GE(copy.end_us, r.at(fc1).end_us);
  const run none = simulate(offload_scenario("0"));
  // 64 GB/s of a 2948 GB/s HBM times the H100's gemm_sensitivity 0.6: 1.3 % slower.
  EXPECT_NEAR(len(r) / len(none), 1 + 0.6 * 64.0 / 2948.0, 1e-3);
  // A slower host link draws less HBM: the GEMM beside the copy slows less.
  const run slow = simulate(offload_scenario("2"), 8);
  EXPECT_LT(len(slow), len(r));
  EXPECT_GT(len(slow), len(none));
}

TEST(Offload, RefusesWhatMegatronRefuses) {
  EXPECT_THROW(resolve_step(offload_scenario("4")), config_error);  // not below the layers
  EXPECT_THROW(resolve_step(offload_scenario("2", "full")), config_error);
  step_scenario pp = offload_scenario("1");
  pp.axes[1] = {"pp", {"2"}};
  EXPECT_THROW(resolve_step(pp), config_error);
  step_scenario flags = offload_scenario("1");
  flags.cluster.clear();
  flags.gpu = "h100_sxm";  // no cluster file: no host link
  EXPECT_THROW(resolve_step(flags), config_error);
}

// TE frees an offloaded layer's memory before another layer's forward needs it: N offloaded of L
// leave L - N layers' activations on the GPU, one layer's fewer for each.
TEST(Offload, DropsTheOffloadedLayersActivations) {
  const auto acts = [](const std::string& n) {
    return resolve_step(offload_scenario(n)).cases.at(0).memory.gib.activations;
  };
  const double none = acts("0"), one = acts("1"), three = acts("3");
  EXPECT_GT(none - one, 0);
  EXPECT_NEAR(none - three, 3 * (none - one), 1e-9);
}

// A MoE model (DeepSeek-V3 at 6 layers: the first 3 dense, then MoE, one stage): the memory
// estimate subtracts each offloaded layer's own stored bytes, dense or MoE, less the largest
// (the one in flight), and the step's copies move the same bytes, so a MoE layer's copy lasts
// longer than a dense layer's in the ratio of their bytes.
TEST(Offload, MoeLayersOffloadTheirOwnBytes) {
  const auto scenario = [](const std::string& layers) {
    step_scenario sc;
    sc.model = "deepseek_v3";
    sc.cluster = "dgx_b200";
    sc.allow_oom = true;
    sc.axes = {{"gpus", {"8"}},   {"tp", {"1"}},  {"ep", {"8"}},
               {"layers", {"6"}}, {"gbs", {"8"}}, {"cpu_offload_layers", {layers}}};
    return sc;
  };
  const auto acts = [&](const std::string& n) {
    return resolve_step(scenario(n)).cases.at(0).memory.gib.activations;
  };
  const run r = simulate(scenario("5"));
  const auto len = [&](const std::string& name) { return r.at(name).end_us - r.at(name).start_us; };
  const double moe_over_dense = len("c0.mb0.L4.offload") / len("c0.mb0.L0.offload");
  EXPECT_GT(moe_over_dense, 1.2);  // the routed experts' copies outweigh the dense MLP
  EXPECT_NEAR(len("c0.mb0.L3.reload"), len("c0.mb0.L4.offload"), 1e-6);
  const double none = acts("0");
  const double dense = (none - acts("2")) / 2;  // layers 0 and 1, both dense, leave the GPU
  EXPECT_GT(dense, 0);
  // Layers 0-4 offloaded: three dense and two MoE, each its own bytes (TE 2.14 keeps L - N).
  EXPECT_NEAR(none - acts("5"), dense * (3 + 2 * moe_over_dense), 1e-6 * none);
}

}  // namespace
}  // namespace ob
