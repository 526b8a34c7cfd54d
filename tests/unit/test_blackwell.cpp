// Blackwell (docs/ARCHITECTURE.md §10.2, §5.4, §5.5): the B200, B300, GB200 and GB300 files, the
// block-scaled dtypes mxfp8 and nvfp4 in the GEMM model and the refusal of a dtype a GPU lacks;
// NVLink domains larger than a node; NCCL's CTA policy, symmetric windows, min/max CTAs and
// NVLS-tree, and the combinations NCCL cannot run.
#include <gtest/gtest.h>

#include <string>

#include "base/error.hpp"
#include "model/cluster.hpp"
#include "model/gpu_spec.hpp"
#include "model/nccl_config.hpp"
#include "sim/gemm_model.hpp"
#include "sim/kernel_model.hpp"
#include "sim/nccl_model.hpp"
#include "sim/simulator.hpp"
#include "test_sim_schedules.hpp"

namespace ob {
namespace {

TEST(Blackwell, EveryBlackwellFileHasTheBlockScaledFormats) {
  for (const char* name : {"b200", "b300", "gb200", "gb300"}) {
    const gpu_spec g = load_gpu_spec(name);
    EXPECT_EQ(g.compute_capability_major, 10) << name;
    EXPECT_TRUE(g.supports(dtype::mxfp8)) << name;
    EXPECT_TRUE(g.supports(dtype::nvfp4)) << name;
    // NVFP4 doubles the fp8 rate at least (B300: triples it); NVLink 5 is 900 GB/s a direction.
    EXPECT_GE(g.peak_tflops(dtype::nvfp4), 2 * g.peak_tflops(dtype::fp8)) << name;
    EXPECT_DOUBLE_EQ(g.nvlink_gbps, 900) << name;
  }
}

TEST(Blackwell, AGpuWithoutTheFormatRefusesItNamingFileAndDtype) {
  for (const char* name : {"h100_sxm", "h200", "a100_sxm"}) {
    const gpu_spec g = load_gpu_spec(name);
    for (dtype t : {dtype::mxfp8, dtype::nvfp4}) {
      EXPECT_FALSE(g.supports(t)) << name;
      try {
        g.require(t, "--dtype");
        ADD_FAILURE() << name << " accepted " << to_string(t);
      } catch (const config_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("--dtype"), std::string::npos) << what;
        EXPECT_NE(what.find(std::string("configs/gpus/") + name + ".json"), std::string::npos)
            << what;
        EXPECT_NE(what.find(to_string(t)), std::string::npos) << what;
      }
    }
  }
}

TEST(Blackwell, Nvfp4GemmIsFasterAndReadsFewerBytesThanMxfp8) {
  const gpu_spec g = load_gpu_spec("b300");
  const gemm_params big{8192, 8192, 8192, dtype::mxfp8, 0};
  gemm_params fp4 = big;
  fp4.type = dtype::nvfp4;
  // Operands with their block scales: 1 + 1/32 byte an element against 1/2 + 1/16.
  const double out = 8192.0 * 8192 * 2;
  EXPECT_NEAR(sim::gemm_hbm_bytes(big) - out, 2 * 8192.0 * 8192 * (1 + 1.0 / 32), 1);
  EXPECT_NEAR(sim::gemm_hbm_bytes(fp4) - out, 2 * 8192.0 * 8192 * (0.5 + 1.0 / 16), 1);
  const double t8 = sim::choose_gemm(big, g, g.sm_count).est_us;
  const double t4 = sim::choose_gemm(fp4, g, g.sm_count).est_us;
  EXPECT_LT(t4, t8);
  EXPECT_GT(t4, t8 / 4);  // fixed costs and the lower nvfp4 efficiency keep it above 1/3
}

// Whether `f` throws a config_error whose message holds `part`.
template <class F>
bool refused_with(F f, const std::string& part) {
  try {
    f();
  } catch (const config_error& e) {
    return std::string(e.what()).find(part) != std::string::npos;
  }
  return false;
}

TEST(NvlinkDomain, Nvl72KeepsGroupsOfUpTo72OnNvlinkWhereADgxGoesToTheNics) {
  const cluster_spec rack = load_cluster("gb200_nvl72");
  const cluster_spec dgx = load_cluster("dgx_b200");
  EXPECT_EQ(rack.gpus_per_node, 4);
  EXPECT_EQ(rack.nvlink_domain, 72);
  EXPECT_EQ(dgx.nvlink_domain, dgx.gpus_per_node);
  EXPECT_EQ(nodes_for(16, rack), 1);
  EXPECT_EQ(nodes_for(16, dgx), 2);
  EXPECT_EQ(nodes_for(144, rack), 2);
  // Megatron's order (tp fastest, then cp, dp, pp): TP 8 x DP 9 fills one rack; PP neighbours
  // 72 ranks apart leave it. On DGX nodes of 8 the DP group spans 9 nodes.
  const rank_grid grid{8, 1, 9, 2};
  EXPECT_EQ(span_of(comm_group::dp, grid, rack.nvlink_domain).nodes, 1);
  EXPECT_EQ(span_of(comm_group::dp, grid, dgx.nvlink_domain).nodes, 9);
  EXPECT_EQ(span_of(comm_group::tp, grid, rack.nvlink_domain).nodes, 1);
  // The same 16-rank all-reduce: on NVLink inside the rack, on the NICs across two DGX nodes.
  const gpu_spec gpu = load_gpu_spec("b200");
  collective_params c = test::collective(coll_op::all_reduce, 1ull << 30, 16, 0);
  c.nodes = nodes_for(16, rack);
  const sim::comm_plan in_rack = sim::plan_nccl_collective(c, gpu, rack);
  c.nodes = nodes_for(16, dgx);
  const sim::comm_plan across = sim::plan_nccl_collective(c, gpu, dgx);
  EXPECT_FALSE(in_rack.inter_node);
  EXPECT_TRUE(across.inter_node);
  EXPECT_LT(1.5 * in_rack.est_us, across.est_us);
}

TEST(NvlinkDomain, ADomainIsAWholeNumberOfNodes) {
  cluster_spec c = load_cluster("gb200_nvl72");
  set_nvlink_domain(c, 8, "--nvlink-domain");  // two trays on multi-node NVLink
  EXPECT_EQ(c.nvlink_domain, 8);
  EXPECT_TRUE(
      refused_with([&] { set_nvlink_domain(c, 6, "--nvlink-domain"); }, "--nvlink-domain 6"));
  EXPECT_TRUE(refused_with([&] { set_nvlink_domain(c, 2, "--nvlink-domain"); }, "whole number"));
}

// The zero-SM all-gather beside a persistent GEMM: tests/unit/test_zero_sm_a2a.cpp.

TEST(NcclFeatures, RefusedCombinationsNameWhy) {
  const gpu_spec b200 = load_gpu_spec("b200"), a100 = load_gpu_spec("a100_sxm");
  collective_params ar = test::collective(coll_op::all_reduce, 1 << 20, 8, 0);
  ar.nccl.policy = cta_policy::zero;
  EXPECT_TRUE(refused_with([&] { check_collective_nccl(ar, &b200, "x"); }, "ncclAllReduce"));
  collective_params rs = test::collective(coll_op::reduce_scatter, 1 << 20, 8, 0);
  rs.nccl.policy = cta_policy::zero;
  EXPECT_TRUE(refused_with([&] { check_collective_nccl(rs, &b200, "x"); }, "reduction"));
  collective_params ag = test::collective(coll_op::all_gather, 1 << 20, 16, 0);
  ag.nccl.policy = cta_policy::zero;
  EXPECT_NO_THROW(check_collective_nccl(ag, &b200, "x"));
  ag.nodes = 2;
  EXPECT_TRUE(refused_with([&] { check_collective_nccl(ag, &b200, "x"); }, "NVLink domains"));
  ag.nodes = 1;
  ag.nccl.nccl_version = nccl_version_code(2, 27);
  EXPECT_TRUE(refused_with([&] { check_collective_nccl(ag, &b200, "x"); }, "NCCL >= 2.28"));
  collective_params sym = test::collective(coll_op::all_reduce, 1 << 20, 8, 0);
  sym.nccl.symmetric = true;
  EXPECT_NO_THROW(check_collective_nccl(sym, &b200, "x"));
  EXPECT_TRUE(refused_with([&] { check_collective_nccl(sym, &a100, "x"); }, "a100_sxm.json"));
  sym.nccl.nccl_version = nccl_version_code(2, 26, 5);
  EXPECT_TRUE(refused_with([&] { check_collective_nccl(sym, &b200, "x"); }, "NCCL >= 2.27"));
  collective_params nvls = test::collective(coll_op::all_reduce, 1 << 20, 8, 0);
  nvls.algorithm = "nvls";
  EXPECT_TRUE(refused_with([&] { sim::plan_nccl_collective(nvls, a100, default_cluster(a100)); },
                           "no NVLink SHARP"));
  nvls.nccl.min_ctas = 32;
  nvls.nccl.max_ctas = 8;
  EXPECT_TRUE(refused_with([&] { check_nccl_config(nvls.nccl, "x"); }, "exceeds max_ctas"));
  EXPECT_EQ(parse_nccl_version("2.28.3", "v"), 22803);
  EXPECT_TRUE(refused_with([] { parse_nccl_version("3.1", "--nccl-version"); }, "NCCL 2"));
}

TEST(NcclFeatures, SymmetricWindowsCutSmallMessageLatencyOnNvlinkOnly) {
  const gpu_spec gpu = load_gpu_spec("b200");
  const cluster_spec net = default_cluster(gpu);
  collective_params c = test::collective(coll_op::all_reduce, 8 << 10, 8, 0);
  const double plain = sim::plan_nccl_collective(c, gpu, net).est_us;
  c.nccl.symmetric = true;
  const double sym = sim::plan_nccl_collective(c, gpu, net).est_us;
  EXPECT_LT(sym, 0.5 * plain);
  // Large messages are bandwidth-bound: nearly the same time.
  c.bytes = 4ull << 30;
  const double big_sym = sim::plan_nccl_collective(c, gpu, net).est_us;
  c.nccl.symmetric = false;
  EXPECT_NEAR(big_sym, sim::plan_nccl_collective(c, gpu, net).est_us, 0.01 * big_sym);
  // Across NVLink domains the network latency stays.
  c.bytes = 64 << 10;
  c.group_size = 16;
  c.nodes = 2;
  const double across = sim::plan_nccl_collective(c, gpu, net).est_us;
  c.nccl.symmetric = true;
  EXPECT_DOUBLE_EQ(sim::plan_nccl_collective(c, gpu, net).est_us, across);
}

TEST(NcclFeatures, MinMaxCtasAndEfficiencyBoundTheChannels) {
  const gpu_spec gpu = load_gpu_spec("b200");
  const cluster_spec net = default_cluster(gpu);
  collective_params c = test::collective(coll_op::all_gather, 1ull << 30, 8, 0);
  c.algorithm = "ring";
  EXPECT_EQ(sim::plan_nccl_collective(c, gpu, net).channels, gpu.default_ctas(c.op));
  c.nccl.max_ctas = 4;
  const sim::comm_plan few = sim::plan_nccl_collective(c, gpu, net);
  EXPECT_EQ(few.channels, 4);
  c.nccl.max_ctas = 0;
  c.nccl.min_ctas = 32;
  EXPECT_EQ(sim::plan_nccl_collective(c, gpu, net).channels, 32);
  // A small message NCCL would run on one channel still gets the communicator's minimum.
  c.bytes = 64 << 10;
  EXPECT_EQ(sim::plan_nccl_collective(c, gpu, net).channels, 32);
  c.nccl.min_ctas = 0;
  c.bytes = 1ull << 30;
  c.ctas = 48;
  c.nccl.policy = cta_policy::efficiency;
  const int eff = sim::plan_nccl_collective(c, gpu, net).channels;
  EXPECT_LT(eff, 48);
  EXPECT_GE(eff * gpu.nccl_channel_gbps, gpu.nvlink_effective_gbps());
}

TEST(NcclFeatures, NvlsTreeCrossesDomainsOnlyWhenAskedFor) {
  const gpu_spec gpu = load_gpu_spec("b200");
  const cluster_spec net = load_cluster("dgx_b200");
  collective_params c = test::collective(coll_op::all_reduce, 256 << 20, 16, 0);
  c.nodes = 2;
  EXPECT_NE(sim::plan_nccl_collective(c, gpu, net).algorithm, sim::nccl_algorithm::nvls_tree);
  c.algorithm = "nvls_tree";
  const sim::comm_plan p = sim::plan_nccl_collective(c, gpu, net);
  EXPECT_EQ(p.algorithm, sim::nccl_algorithm::nvls_tree);
  EXPECT_TRUE(p.inter_node);
  c.nodes = 1;
  c.group_size = 8;
  EXPECT_TRUE(refused_with([&] { sim::plan_nccl_collective(c, gpu, net); }, "crosses NVLink"));
}

}  // namespace
}  // namespace ob
