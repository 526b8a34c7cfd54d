// NCCL 2.30's hierarchical zero-SM all-gather across NVLink domains (docs/ARCHITECTURE.md §5.5):
// refused before 2.30, costed from it on as copy engines inside the domain and the CPU proxy's
// RDMA across it, with no SM taken.
#include <gtest/gtest.h>

#include <string>

#include "base/error.hpp"
#include "model/cluster.hpp"
#include "model/gpu_spec.hpp"
#include "model/nccl_config.hpp"
#include "sim/kernel_model.hpp"
#include "test_sim_schedules.hpp"

namespace ob {
namespace {

collective_params zero_ag(int ranks, int nodes, int version) {
  collective_params c = test::collective(coll_op::all_gather, 1ull << 30, ranks, 0);
  c.nodes = nodes;
  c.nccl.policy = cta_policy::zero;
  c.nccl.nccl_version = version;
  return c;
}

sim::kernel_plan plan(const collective_params& c, const gpu_spec& gpu, const cluster_spec& net) {
  op o;
  o.params = c;
  return sim::plan_kernel(o, gpu, net);
}

TEST(ZeroSmAcrossNodes, RefusedBeforeNccl230) {
  const gpu_spec gpu = load_gpu_spec("b200");
  try {
    check_collective_nccl(zero_ag(16, 2, nccl_version_code(2, 29)), &gpu, "x");
    ADD_FAILURE() << "2.29 accepted a zero-SM all-gather across domains";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("2.30"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(check_collective_nccl(zero_ag(16, 2, nccl_version_code(2, 30)), &gpu, "x"));
}

TEST(ZeroSmAcrossNodes, NoSmAndTheNicsSetTheTime) {
  const gpu_spec gpu = load_gpu_spec("b200");
  const cluster_spec net = load_cluster("dgx_b200");
  const sim::kernel_plan two = plan(zero_ag(16, 2, nccl_version_code(2, 30)), gpu, net);
  const sim::kernel_plan four = plan(zero_ag(32, 4, nccl_version_code(2, 30)), gpu, net);
  const sim::kernel_plan inside = plan(zero_ag(8, 1, nccl_version_code(2, 30)), gpu, net);
  EXPECT_EQ(two.model, sim::progress_model::copy_engine);
  EXPECT_EQ(two.ctas, 0);
  // 1 GiB over 16 ranks: one 64 MiB shard to the rail peer, at the GPU's NIC share (47 GB/s)
  // rather than the copy engines' rate (the copy engines' 2 x 7 shards inside take less).
  const double nic = net.node_egress_gbps() / net.gpus_per_node;
  const double shard = (1ull << 30) / 16.0;
  const double latency_bytes = net.net_ring_hop_us_simple * gpu.copy_engine_gbps * 1e3;
  EXPECT_NEAR(two.channel_bytes - latency_bytes, shard * gpu.copy_engine_gbps / nic, 1);
  // Inside one domain it stays NCCL 2.28's copy-engine all-gather: the bytes nccl-tests counts.
  EXPECT_DOUBLE_EQ(inside.channel_bytes, (1ull << 30) * 7.0 / 8);
  // More domains: more shards cross the NIC.
  EXPECT_GT(four.channel_bytes, two.channel_bytes);
}

}  // namespace
}  // namespace ob
