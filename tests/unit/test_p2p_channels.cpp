// NCCL's all-to-all inside one NVLink domain (docs/CALIBRATION.md §2.11): grouped send/recv,
// each peer's shard split over channels by NCCL's p2p rule, all parts over the communicator's
// p2p channels. Checked on the rule itself and on the simulated timeline: the CTAs the kernel
// holds and the bus rate it reaches at a small and a large size.
#include <gtest/gtest.h>

#include <cstdint>

#include "model/cluster.hpp"
#include "model/collective_traits.hpp"
#include "model/gpu_spec.hpp"
#include "sim/nccl_model.hpp"
#include "sim/simulator.hpp"
#include "test_sim_schedules.hpp"

namespace ob {
namespace {

constexpr std::uint64_t mib = 1ull << 20;

TEST(P2pChannels, PeersShareThePeerChannelsOneChannelEachUntilTheirPartsGrow) {
  // 8 ranks on 32 p2p channels: 4 channels a peer while a part stays within 32 chunks (16 MiB).
  const sim::p2p_split small = sim::nccl_p2p_split(8.0 * 1024, 8, 32);  // 64 KiB all-to-all
  EXPECT_EQ(small.per_peer, 1);
  EXPECT_EQ(small.channels, 8);
  EXPECT_EQ(small.protocol, nccl_protocol::ll);  // 8 KiB fits one channel's LL threshold
  const sim::p2p_split one_mib = sim::nccl_p2p_split(128.0 * 1024, 8, 32);
  EXPECT_EQ(one_mib.per_peer, 2);  // two parts of 64 KiB, an eighth of the 512 KiB chunk
  EXPECT_EQ(one_mib.channels, 16);
  EXPECT_EQ(one_mib.protocol, nccl_protocol::simple);
  const sim::p2p_split mid = sim::nccl_p2p_split(64.0 * mib, 8, 32);
  EXPECT_EQ(mid.per_peer, 4);
  EXPECT_EQ(mid.channels, 32);
  // 512 MiB a peer: parts above 16 MiB double the peer's channels up to all 32.
  const sim::p2p_split big = sim::nccl_p2p_split(512.0 * mib, 8, 32);
  EXPECT_EQ(big.per_peer, 32);
  EXPECT_EQ(big.channels, 32);
}

TEST(P2pChannels, FourRanksDoubleThePeerChannelsJustAbove512MiB) {
  // nccl #2169's sizes on 4 H100: 500 MiB keeps 8 channels a peer, 513 MiB takes 16.
  EXPECT_EQ(sim::nccl_p2p_split(500.0 * mib / 4, 4, 32).per_peer, 8);
  EXPECT_EQ(sim::nccl_p2p_split(512.0 * mib / 4, 4, 32).per_peer, 8);
  EXPECT_EQ(sim::nccl_p2p_split(513.0 * mib / 4, 4, 32).per_peer, 16);
  // A communicator capped at 8 CTAs: one channel a peer, never more than the cap.
  const sim::p2p_split capped = sim::nccl_p2p_split(512.0 * mib, 8, 8);
  EXPECT_EQ(capped.channels, 8);
}

// One all-to-all over 8 H100s alone on the GPU: its CTAs and bus rate on the timeline.
struct a2a_run {
  int ctas = 0;
  double busbw_gbps = 0;
};
a2a_run run_a2a(std::uint64_t bytes, const gpu_spec& gpu) {
  schedule s;
  s.name = "a2a";
  s.add_stream("comm", stream_role::comm, -1);
  s.add_op("a2a", 0, test::collective(coll_op::all_to_all, bytes, 8, 0));
  const sim_result r = simulate(s, gpu, sim_options{8, false});
  const sim_op_result& op = r.ops.at(0);
  const double bus = traits_of(coll_op::all_to_all).bytes_moved(static_cast<double>(bytes), 8);
  return {op.ctas, bus / ((op.end_us - op.start_us) * 1e3)};
}

TEST(P2pChannels, AllToAllTimelineHoldsNcclsChannelsAndFillsNvlinkWhenLarge) {
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  ASSERT_EQ(gpu.default_ctas(coll_op::all_to_all), 32);
  const a2a_run small = run_a2a(1 * mib, gpu);
  const a2a_run large = run_a2a(4096 * mib, gpu);
  EXPECT_EQ(small.ctas, 16);
  EXPECT_EQ(large.ctas, 32);
  // 32 channels x 23.1 GB/s exceed NVLink's 369 effective: the link, not the channels, bounds
  // the large one (8 channels held it at 185 before).
  EXPECT_GT(large.busbw_gbps, 350);
  EXPECT_LT(large.busbw_gbps, gpu.nvlink_effective_gbps());
  EXPECT_LT(small.busbw_gbps, 0.5 * large.busbw_gbps);  // latency and fill dominate at 1 MiB
}

TEST(P2pChannels, AcrossNodesTheAllToAllKeepsTheSendRecvDefault) {
  // NCCL's rule over the network is not modelled: two DGX nodes keep nccl_default_ctas.p2p.
  const gpu_spec gpu = load_gpu_spec("h100_sxm");
  collective_params c = test::collective(coll_op::all_to_all, 1ull << 30, 16, 0);
  c.nodes = 2;
  EXPECT_EQ(sim::plan_nccl_collective(c, gpu, default_cluster(gpu)).channels, gpu.nccl_ctas_p2p);
  c.nodes = 1;
  EXPECT_EQ(sim::plan_nccl_collective(c, gpu, default_cluster(gpu)).channels, 32);
}

}  // namespace
}  // namespace ob
