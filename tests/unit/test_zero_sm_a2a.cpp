// NCCL's zero-SM (copy-engine) AlltoAll (docs/ARCHITECTURE.md §5.5): NCCL 2.28 runs AllGather
// and AlltoAll on the copy engines with CTA policy zero inside one NVLink domain, 2.30 across
// domains. The simulator costs it with no SM and its HBM traffic kept; the refusals name why; a
// training step uses it for the EP all-to-all where NCCL can.
#include <gtest/gtest.h>

#include <string>

#include "base/error.hpp"
#include "model/cluster.hpp"
#include "model/gpu_spec.hpp"
#include "model/nccl_config.hpp"
#include "sim/kernel_model.hpp"
#include "sim/simulator.hpp"
#include "step_test_util.hpp"
#include "test_sim_schedules.hpp"

namespace ob {
namespace {

collective_params zero_a2a(int ranks = 8, int nodes = 1, int version = nccl_version_code(2, 28)) {
  collective_params c = test::collective(coll_op::all_to_all, 1ull << 30, ranks, 0);
  c.nodes = nodes;
  c.nccl.policy = cta_policy::zero;
  c.nccl.nccl_version = version;
  return c;
}

// One collective (comm stream, enqueued first) beside one persistent GEMM on every SM.
schedule coll_beside_gemm(coll_op op, cta_policy policy, bool with_coll = true) {
  schedule s;
  s.name = "zero_sm";
  s.add_stream("comm", stream_role::comm, -1);
  s.add_stream("compute", stream_role::compute, 0);
  collective_params c = zero_a2a();
  c.op = op;
  c.nccl.policy = policy;
  if (with_coll) s.add_op("coll", 0, c);
  s.add_op("gemm", 1, test::gemm(8192, 8192, 8192));
  return s;
}

std::string refusal(const collective_params& c, const gpu_spec& gpu) {
  try {
    check_collective_nccl(c, &gpu, "collective all_to_all");
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

// The copy-engine collective beside the GEMM: no SM taken, but its HBM traffic slows the GEMM
// by exactly the sensitivity times its share. NCCL's SM kernel instead holds SMs from the
// persistent GEMM (a further partial wave) while its channels' HBM traffic follows their rate.
// Returns the GEMM's time beside NCCL's SM kernel over its time beside the copy engines.
double expect_no_sm_but_hbm_kept(coll_op op) {
  SCOPED_TRACE(std::string(to_string(op)));
  const gpu_spec gpu = test::plain_tiles(load_gpu_spec("b200"));
  const sim_options o{8, false};
  const sim_result zero = simulate(coll_beside_gemm(op, cta_policy::zero), gpu, o);
  const sim_result sms = simulate(coll_beside_gemm(op, cta_policy::standard), gpu, o);
  const sim_result alone = simulate(coll_beside_gemm(op, cta_policy::zero, false), gpu, o);
  const sim_op_result &coll = zero.ops[0], &g = zero.ops[1];
  EXPECT_EQ(coll.ctas, 0);
  EXPECT_EQ(coll.start_us, coll.enqueue_us);  // no SM to wait for
  EXPECT_EQ(g.ctas, gpu.sm_count);
  EXPECT_LT(coll.start_us, g.start_us);
  EXPECT_GT(coll.end_us, g.end_us);  // the GEMM runs wholly beside the moving bytes
  const double d_comm = gpu.copy_engine_gbps * 1e3 * gpu.comm_hbm_traffic;
  const double slow = 1 + gpu.gemm_hbm_sensitivity * d_comm / gpu.hbm_bytes_per_us();
  const double solo = alone.ops[0].end_us - alone.ops[0].start_us;
  EXPECT_GT(slow, 1.05);
  EXPECT_NEAR(g.end_us - g.start_us, solo * slow, 1e-6 * solo);
  // It moves what leaves the rank (7 of 8 shards) at the copy engines' rate, slowed by the GEMM.
  EXPECT_GT(coll.end_us - coll.start_us, (1ull << 30) * 7.0 / 8 / (gpu.copy_engine_gbps * 1e3));
  EXPECT_EQ(sms.ops[0].ctas, gpu.default_ctas(op));
  EXPECT_GT(sms.ops[1].end_us - sms.ops[1].start_us, solo);
  return (sms.ops[1].end_us - sms.ops[1].start_us) / (g.end_us - g.start_us);
}

// NCCL's SM all-to-all holds its 32 p2p channels' SMs (docs/CALIBRATION.md §2.11), a further
// partial wave of the persistent GEMM; the zero-SM one costs the GEMM its HBM traffic only.
TEST(ZeroSmAllToAll, BesideAPersistentGemmTakesNoSmButItsHbmTrafficSlowsTheGemm) {
  EXPECT_GT(expect_no_sm_but_hbm_kept(coll_op::all_to_all), 1.05);
}

// The all-gather's 16 SM channels cost the GEMM a wave more than its copy-engine form.
TEST(ZeroSmAllGather, BesideAPersistentGemmTakesNoSmButKeepsHbmInterference) {
  EXPECT_GT(expect_no_sm_but_hbm_kept(coll_op::all_gather), 1.05);
}

TEST(ZeroSmAllToAll, RefusedWhereTheVersionOrTheDomainDoesNotAllowIt) {
  const gpu_spec gpu = load_gpu_spec("b200");
  EXPECT_EQ(refusal(zero_a2a(), gpu), "");
  EXPECT_NE(refusal(zero_a2a(8, 1, nccl_version_code(2, 27)), gpu).find("NCCL >= 2.28"),
            std::string::npos);
  const std::string across = refusal(zero_a2a(16, 2, nccl_version_code(2, 29)), gpu);
  EXPECT_NE(across.find("2 NVLink domains"), std::string::npos) << across;
  EXPECT_NE(across.find("2.30"), std::string::npos) << across;
  EXPECT_EQ(refusal(zero_a2a(16, 2, nccl_version_code(2, 30)), gpu), "");
  collective_params deep = zero_a2a();
  deep.ep.backend = ep_backend::deepep;
  EXPECT_NE(refusal(deep, gpu).find("deepep exchange runs its own kernels"), std::string::npos);
  collective_params rs = zero_a2a();
  rs.op = coll_op::reduce_scatter;
  EXPECT_NE(refusal(rs, gpu).find("AllGather and AlltoAll"), std::string::npos);
}

TEST(ZeroSmAllToAll, AcrossDomainsTheRemoteShardsCrossTheNics) {
  const gpu_spec gpu = load_gpu_spec("b200");
  const cluster_spec net = load_cluster("dgx_b200");
  op o;
  o.params = zero_a2a(16, 2, nccl_version_code(2, 30));
  const sim::kernel_plan across = sim::plan_kernel(o, gpu, net);
  o.params = zero_a2a(8, 1, nccl_version_code(2, 30));
  const sim::kernel_plan inside = sim::plan_kernel(o, gpu, net);
  EXPECT_EQ(across.model, sim::progress_model::copy_engine);
  EXPECT_EQ(across.ctas, 0);
  EXPECT_DOUBLE_EQ(inside.channel_bytes, (1ull << 30) * 7.0 / 8);
  // 16 ranks over 2 domains: 8 shards of 64 MiB leave through the GPU's NIC share, which is far
  // slower than the copy engines that move the 7 shards inside.
  const double nic = net.node_egress_gbps() / net.gpus_per_node;
  const double shard = (1ull << 30) / 16.0;
  const double latency_bytes = net.net_ring_hop_us_simple * gpu.copy_engine_gbps * 1e3;
  EXPECT_NEAR(across.channel_bytes - latency_bytes, 8 * shard * gpu.copy_engine_gbps / nic, 1);
}

step_scenario moe_step(const char* policy, const char* gpus, const char* extra_axis = nullptr,
                       const char* extra_value = nullptr) {
  step_scenario sc;
  sc.model = "qwen3_30b_a3b";
  sc.cluster = "dgx_b200";
  sc.allow_oom = true;
  sc.axes = {{"gpus", {gpus}},
             {"ep", {gpus}},
             {"layers", {"2"}},
             {"gbs", {"32"}},
             {"cta_policy", {policy}}};
  if (extra_axis) sc.axes.push_back({extra_axis, {extra_value}});
  return sc;
}

TEST(ZeroSmAllToAll, AStepRunsTheEpAllToAllOnTheCopyEnginesWhereNcclCan) {
  const std::string dispatch = "c0.mb0.L0.moe_dispatch";
  const test::timeline zero = test::simulate(moe_step("zero", "8"));
  const test::timeline sms = test::simulate(moe_step("default", "8"));
  const auto& a2a = zero.named(0, dispatch).as<collective_params>();
  EXPECT_EQ(a2a.op, coll_op::all_to_all);
  EXPECT_EQ(a2a.nccl.policy, cta_policy::zero);
  EXPECT_EQ(zero.at(0, dispatch).ctas, 0);
  EXPECT_GT(sms.at(0, dispatch).ctas, 0);
  // Across two DGX nodes NCCL 2.28 keeps its SM kernels; 2.30 goes hierarchical.
  const test::timeline two = test::simulate(moe_step("zero", "16"));
  EXPECT_EQ(two.named(0, dispatch).as<collective_params>().nccl.policy, cta_policy::standard);
  const test::timeline two_230 = test::simulate(moe_step("zero", "16", "nccl_version", "2.30"));
  EXPECT_EQ(two_230.named(0, dispatch).as<collective_params>().nccl.policy, cta_policy::zero);
  EXPECT_EQ(two_230.at(0, dispatch).ctas, 0);
  // DeepEP's kernels hold their SMs whatever NCCL's policy.
  const test::timeline deep = test::simulate(moe_step("zero", "8", "moe_dispatcher", "deepep"));
  EXPECT_EQ(deep.named(0, dispatch).as<collective_params>().nccl.policy, cta_policy::standard);
  EXPECT_GT(deep.at(0, dispatch).ctas, 0);
}

}  // namespace
}  // namespace ob
