// Model v2 (docs/ARCHITECTURE.md §5.1): GEMM fixed costs, split-K and fp8 ramp; NCCL's protocol,
// channel and algorithm choice; HBM interference. Calibrated constants from configs/gpus.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "base/error.hpp"
#include "model/cluster.hpp"
#include "model/gpu_spec.hpp"
#include "sim/gemm_model.hpp"
#include "sim/kernel_model.hpp"
#include "sim/nccl_model.hpp"
#include "sim/network_model.hpp"
#include "sim/simulator.hpp"
#include "test_sim_schedules.hpp"

namespace ob {
namespace {

class SimV2 : public ::testing::Test {
 protected:
  double op_us(const op_params& p, const gpu_spec& g) const {
    schedule s;
    s.name = "one";
    s.add_stream("s", stream_role::compute, 0);
    s.add_op("op", 0, p);
    const sim_result r = simulate(s, g, sim_options{});
    return r.ops[0].end_us - r.ops[0].start_us;
  }
  double tflops(std::int64_t m, std::int64_t n, std::int64_t k, dtype t = dtype::bf16,
                int target = 0) const {
    const gemm_params g{m, n, k, t, target};
    return g.flops() / op_us(g, gpu) / 1e6;
  }
  double busbw(coll_op op, std::uint64_t bytes, int n, const std::string& algo = "") const {
    collective_params c = test::collective(op, bytes, n, 0);
    c.algorithm = algo;
    const double factor = op == coll_op::all_reduce ? 2.0 * (n - 1) / n : (n - 1.0) / n;
    return bytes * factor / op_us(c, gpu) / 1e3;
  }
  sim::comm_plan plan(coll_op op, std::uint64_t bytes, int n, const std::string& algo = "",
                      const gpu_spec* g = nullptr) const {
    collective_params c = test::collective(op, bytes, n, 0);
    c.algorithm = algo;
    const gpu_spec& use = g ? *g : gpu;
    return sim::plan_nccl_collective(c, use, default_cluster(use));
  }
  gpu_spec gpu = load_gpu_spec("h100_sxm");
};

TEST_F(SimV2, PublishedH100GemmRowsWithinTenPercent) {
  struct row {
    std::int64_t m, n, k;
    dtype t;
    double published;  // TFLOP/s, docs/CALIBRATION.md §3.1
  };
  const row rows[] = {
      {8192, 8192, 8192, dtype::bf16, 797.8},  {6144, 6144, 6144, dtype::bf16, 741.1},
      {2048, 2048, 13312, dtype::bf16, 794.5}, {1024, 1024, 1024, dtype::bf16, 176.6},
      {1024, 1024, 1024, dtype::fp8, 274.1},   {4096, 4096, 4096, dtype::fp8, 1216.9},
      {8192, 8192, 8192, dtype::fp8, 1290.1},  {16384, 16384, 16384, dtype::fp8, 1377.3},
      {1024, 2145, 1024, dtype::fp8, 410.7},   {802816, 192, 768, dtype::fp8, 663.8}};
  for (const row& r : rows)
    EXPECT_NEAR(tflops(r.m, r.n, r.k, r.t) / r.published, 1.0, 0.10)
        << r.m << "x" << r.n << "x" << r.k << " " << to_string(r.t);
}

TEST_F(SimV2, FixedCostsMakeSmallGemmsSlowAndFp8NeedsLargerShapes) {
  const double bf16_small = tflops(1024, 1024, 1024) / tflops(8192, 8192, 8192);
  const double fp8_small =
      tflops(1024, 1024, 1024, dtype::fp8) / tflops(8192, 8192, 8192, dtype::fp8);
  EXPECT_LT(bf16_small, 0.3);  // a quarter of the large-shape rate, not half
  EXPECT_LT(fp8_small, bf16_small);
  // Short K loses efficiency: the per-CTA setup is paid against less math.
  EXPECT_LT(tflops(4096, 4096, 512), 0.8 * tflops(4096, 4096, 8192));
}

TEST_F(SimV2, SplitKChargesAChunkLessThanAFullExtraWave) {
  // A ring-exchange chunk of a GPT-3 175B layer (512 rows, TP 4) on 116 SMs (margin 16): 144
  // tiles of 128x256 would need two waves for 1.24 waves of work.
  const gemm_params g{512, 9216, 12288, dtype::bf16, 16};
  const sim::gemm_choice c = sim::choose_gemm(g, gpu, 116);
  EXPECT_GT(c.splits, 1);
  const gpu_spec plain = test::plain_tiles(gpu);
  const sim::gemm_choice full = sim::choose_gemm(g, plain, 116);
  EXPECT_EQ(full.splits, 1);
  EXPECT_LT(op_us(g, gpu), 0.8 * 2 * test::tile_us(gpu, 12288));
}

TEST_F(SimV2, SmMarginStillMovesPersistentGemmInWaveSteps) {
  // K = 1536 leaves no room for split-K (slices >= gemm_splitk_min_k): waves of 512 tiles.
  const std::int64_t tiles = (4096 / 128) * (4096 / 256);
  double prev = 0;
  for (int target : {132, 128, 120, 103, 100, 86}) {
    const gemm_params g{4096, 4096, 1536, dtype::bf16, gpu.sm_count - target};
    const sim::gemm_choice c = sim::choose_gemm(g, gpu, target);
    EXPECT_EQ(c.splits, 1);
    const double dur = op_us(g, gpu);
    const std::int64_t waves = (tiles + target - 1) / target;
    EXPECT_EQ(c.units, tiles);
    EXPECT_NEAR(dur, c.setup_us + waves * c.unit_us, 1e-6) << target;
    // Fewer SMs: whole waves more (4, 5, 5, 5, 6, 6), never a fraction of one; each unit's
    // share of HBM time shrinks a little with fewer CTAs, so the steps are not quite flat.
    EXPECT_GT(dur, prev - 0.1 * c.unit_us) << target;
    prev = dur;
  }
}

TEST_F(SimV2, ProtocolAndChannelsFollowMessageSize) {
  int prev = -1;
  for (std::uint64_t b = 1024; b <= (1ull << 32); b *= 4) {
    const sim::comm_plan p = plan(coll_op::all_reduce, b, 8, "ring");
    EXPECT_GE(static_cast<int>(p.protocol), prev) << b;  // LL, then LL128, then Simple
    prev = static_cast<int>(p.protocol);
  }
  EXPECT_EQ(plan(coll_op::all_reduce, 32 << 10, 8, "ring").protocol, nccl_protocol::ll);
  EXPECT_EQ(plan(coll_op::all_reduce, 1ull << 30, 8, "ring").protocol, nccl_protocol::simple);
  EXPECT_LT(plan(coll_op::all_gather, 64 << 10, 8).channels, 4);  // NCCL drops channels
  EXPECT_EQ(plan(coll_op::all_gather, 256u << 20, 8).channels,
            gpu.default_ctas(coll_op::all_gather));
}

// NCCL's channel rule (docs/CALIBRATION.md §2.6): channels drop while the size is below
// channels x threads x threshold; only the LL ring multiplies the threshold by the ranks.
TEST_F(SimV2, ChannelRuleMultipliesByRanksForTheLlRingOnly) {
  auto ch = [&](std::uint64_t bytes, int ranks, nccl_protocol p, bool ring) {
    return sim::nccl_channels_for(static_cast<double>(bytes), ranks, 16, p, ring, gpu);
  };
  ASSERT_EQ(gpu.nccl_threads, 512);
  ASSERT_EQ(gpu.proto(nccl_protocol::ll).thread_bytes, 8);
  // LL ring: 512 threads x 8 B x ranks per channel: 32 KiB on 8 ranks, 16 KiB on 4.
  EXPECT_EQ(ch(64 << 10, 8, nccl_protocol::ll, true), 2);
  EXPECT_EQ(ch(64 << 10, 4, nccl_protocol::ll, true), 4);
  EXPECT_EQ(ch(64 << 10, 32, nccl_protocol::ll, true), 1);
  // The LL tree, LL128 (640 threads x 8 B) and Simple (512 x 64 B) ignore the ranks.
  EXPECT_EQ(ch(64 << 10, 32, nccl_protocol::ll, false), 16);
  for (int ranks : {4, 8, 32}) {
    EXPECT_EQ(ch(64 << 10, ranks, nccl_protocol::ll128, true), 12) << ranks;
    EXPECT_EQ(ch(64 << 10, ranks, nccl_protocol::simple, true), 2) << ranks;
  }
  // Never fewer than one, never more than the communicator's channels.
  EXPECT_EQ(ch(8, 8, nccl_protocol::simple, true), 1);
  EXPECT_EQ(ch(1ull << 30, 8, nccl_protocol::ll, true), 16);
}

// At 1 MiB NCCL's rule leaves an all-gather or reduce-scatter in one node on all its channels,
// on 4 GPUs and on 8: 1 MiB is 32 (8 ranks) or 64 (4 ranks) LL ring channels' worth.
TEST_F(SimV2, OneMibInOneNodeKeepsEveryChannel) {
  for (coll_op op : {coll_op::all_gather, coll_op::reduce_scatter})
    for (int n : {4, 8}) {
      const sim::comm_plan p = plan(op, 1 << 20, n);
      EXPECT_EQ(p.channels, gpu.default_ctas(op)) << n;
      EXPECT_EQ(p.protocol, nccl_protocol::ll) << n;
    }
  // Below it the LL ring drops channels, sooner on more ranks.
  EXPECT_LT(plan(coll_op::all_gather, 128 << 10, 8).channels,
            plan(coll_op::all_gather, 128 << 10, 4).channels);
}

TEST_F(SimV2, NvlsIsNcclsDefaultForLargeAllReducesWhereTheGpuHasIt) {
  EXPECT_EQ(plan(coll_op::all_reduce, 1ull << 30, 8).algorithm, sim::nccl_algorithm::nvls);
  EXPECT_EQ(plan(coll_op::all_reduce, 64 << 10, 8).algorithm, sim::nccl_algorithm::ring);
  EXPECT_EQ(plan(coll_op::all_gather, 1ull << 30, 8).algorithm, sim::nccl_algorithm::ring);
  const gpu_spec a100 = load_gpu_spec("a100_sxm");
  EXPECT_EQ(plan(coll_op::all_reduce, 1ull << 30, 8, "", &a100).algorithm,
            sim::nccl_algorithm::ring);
  EXPECT_THROW(plan(coll_op::all_reduce, 1ull << 30, 8, "nvls", &a100), config_error);
  EXPECT_THROW(plan(coll_op::all_gather, 1ull << 30, 8, "nvls"), config_error);
  EXPECT_THROW(plan(coll_op::all_reduce, 1ull << 30, 8, "bogus"), config_error);
  EXPECT_NEAR(busbw(coll_op::all_reduce, 8ull << 30, 8), 478.87, 0.1 * 478.87);
  EXPECT_NEAR(busbw(coll_op::all_reduce, 8ull << 30, 8, "ring"), 365.6, 0.1 * 365.6);
}

TEST_F(SimV2, NvlsRampFollowsNcclTestsWithinTenPercent) {
  // 8x H100 NVLS all-reduce, NCCL 2.18.5 (docs/CALIBRATION.md §3.2).
  const std::pair<std::uint64_t, double> pts[] = {
      {64 << 10, 2.72},     {1 << 20, 43.70},     {8 << 20, 172.13},
      {16 << 20, 234.45},   {64 << 20, 361.78},   {128u << 20, 400.61},
      {512u << 20, 438.46}, {1ull << 30, 466.35}, {8ull << 30, 478.87}};
  for (const auto& [bytes, published] : pts)
    EXPECT_NEAR(busbw(coll_op::all_reduce, bytes, 8, "nvls") / published, 1.0, 0.10) << bytes;
}

TEST_F(SimV2, BusbwRampsWithSizeOnTwoFourAndEightGpus) {
  for (int n : {2, 4, 8}) {
    for (coll_op op : {coll_op::all_gather, coll_op::all_reduce}) {
      const double plateau = busbw(op, 4ull << 30, n, "ring");
      double prev = 0;
      for (std::uint64_t b = 64 << 10; b <= (4ull << 30); b *= 4) {
        const double bw = busbw(op, b, n, "ring");
        EXPECT_GT(bw, prev) << n << " " << b;
        prev = bw;
      }
      // nccl-tests' shape: far below the plateau at 1 MiB, near it from a few hundred MiB.
      EXPECT_LT(busbw(op, 1 << 20, n, "ring"), 0.4 * plateau) << n;
      EXPECT_GT(busbw(op, 256u << 20, n, "ring"), 0.85 * plateau) << n;
      EXPECT_NEAR(plateau, 365, 0.06 * 365) << n;
    }
  }
}

TEST_F(SimV2, MemoryBoundGemmSlowsACollectiveMoreThanAComputeBoundOne) {
  auto comm_with = [&](const gemm_params& g) {
    schedule s;
    s.name = "hbm";
    s.add_stream("comm", stream_role::comm, -1);
    s.add_stream("compute", stream_role::compute, 0);
    s.add_op("ag", 0, test::collective(coll_op::all_gather, 256u << 20, 8, 16));
    s.add_op("gemm", 1, g);
    const sim_result r = simulate(s, gpu, sim_options{});
    return r.ops[0].end_us - r.ops[0].start_us;
  };
  const double alone = op_us(test::collective(coll_op::all_gather, 256u << 20, 8, 16), gpu);
  // Both GEMMs run on the SMs the collective leaves free and outlast it.
  const double compute_bound = comm_with({8192, 8192, 8192, dtype::bf16, 16}) / alone;
  const double memory_bound = comm_with({1 << 22, 128, 1024, dtype::bf16, 16}) / alone;
  EXPECT_GT(compute_bound, 1.02);
  EXPECT_GT(memory_bound, compute_bound + 0.2);
  EXPECT_LT(memory_bound, 2.2);  // nccl #1433: up to 2x
}

// Across nodes (docs/CALIBRATION.md §2.6): NCCL's tuning model, as figures of the cluster.
sim::network_cost across(coll_op op, std::uint64_t bytes, int ranks, nccl_protocol p, bool tree,
                         const gpu_spec& gpu, const cluster_spec& net) {
  collective_params c = test::collective(op, bytes, ranks, 0);
  c.nodes = ranks / net.gpus_per_node;
  return sim::inter_node_collective(c, p, tree, gpu, net);
}

TEST_F(SimV2, EveryStepOfARingThatLeavesTheNodeCostsAProxyPost) {
  const cluster_spec net = default_cluster(gpu);
  const nccl_protocol_constants& ll = gpu.proto(nccl_protocol::ll);
  // 32 ranks on 4 nodes, all-gather: 31 steps, 3 cross a node boundary; the 27 others cost the
  // proxy's 1 us post, not LL's 0.4 us NVLink hop.
  ASSERT_LT(ll.hop_us, net.proxy_post_us_ll);
  const double lat =
      across(coll_op::all_gather, 1 << 20, 32, nccl_protocol::ll, false, gpu, net).latency_us;
  EXPECT_NEAR(lat, ll.base_us + 27 * net.proxy_post_us_ll + 3 * net.net_ring_hop_us_ll, 1e-9);
}

TEST_F(SimV2, LlAcrossNodesIsCappedByNodeCount) {
  const cluster_spec net = default_cluster(gpu);
  auto cap = [&](int ranks) {
    return across(coll_op::all_gather, 1 << 20, ranks, nccl_protocol::ll, false, gpu, net).cap_gbps;
  };
  EXPECT_DOUBLE_EQ(cap(16), net.ll_max_busbw_gbps_2_nodes);
  EXPECT_DOUBLE_EQ(cap(32), net.ll_max_busbw_gbps_more);
  EXPECT_DOUBLE_EQ(cap(128), net.ll_max_busbw_gbps_more);
}

TEST_F(SimV2, TreeDepthAndMediumSizeCorrection) {
  const cluster_spec net = default_cluster(gpu);
  auto tree = [&](std::uint64_t bytes, int ranks) {
    return across(coll_op::all_reduce, bytes, ranks, nccl_protocol::simple, true, gpu, net);
  };
  // Each doubling of the nodes adds one level up and one down, each a network hop and the
  // proxy's post for an inner node's second child.
  EXPECT_NEAR(tree(8, 64).latency_us - tree(8, 32).latency_us,
              2 * (net.net_tree_hop_us_simple + net.proxy_post_us_simple), 1e-9);
  // NCCL's correction: Simple at 1 MiB runs at half the tree's bandwidth, at 1 GiB at all of it.
  EXPECT_NEAR(tree(1 << 20, 32).cap_gbps / tree(1ull << 30, 32).cap_gbps, 0.5, 1e-9);
}

// The tree's chain inside a node runs NCCL's tree NVLink hops (LL 0.6 us, not the ring's 0.4
// of the GPU file): 7 hops up and 7 down on 8 GPUs per node, 2 network levels each way on 4 nodes.
TEST_F(SimV2, TreeChainInsideTheNodePaysTheTreesOwnNvlinkHop) {
  const cluster_spec net = default_cluster(gpu);
  const nccl_protocol_constants& ll = gpu.proto(nccl_protocol::ll);
  ASSERT_NE(net.tree_nvlink_hop_us_ll, ll.hop_us);
  const double lat =
      across(coll_op::all_reduce, 8, 32, nccl_protocol::ll, true, gpu, net).latency_us;
  // The deeper level's inner node has two children: one more proxy post up and one down.
  EXPECT_NEAR(lat,
              ll.base_us + 2 * (7 * net.tree_nvlink_hop_us_ll + 2 * net.net_tree_hop_us_ll +
                                net.proxy_post_us_ll),
              1e-9);
  // Two GPUs per node: one hop each way inside, so the chain's share shrinks with the node.
  const double lat2 =
      across(coll_op::all_reduce, 8, 8, nccl_protocol::ll, true, gpu, default_cluster(gpu, 2, 0))
          .latency_us;
  EXPECT_NEAR(lat2,
              ll.base_us + 2 * (net.tree_nvlink_hop_us_ll + 2 * net.net_tree_hop_us_ll +
                                net.proxy_post_us_ll),
              1e-9);
}

// NCCL's binary tree across nodes (src/graph/trees.cc): the root has one child, each inner node
// two, so the deepest path of 2^d nodes crosses d - 1 inner nodes whose proxy posts once more
// per child going up and once more going down than the tuner's hop counts.
TEST_F(SimV2, TreeInnerNodesPayAProxyPostForTheirSecondChild) {
  const cluster_spec net = default_cluster(gpu);
  auto lat = [&](int nodes, nccl_protocol p) {
    return across(coll_op::all_reduce, 8, 8 * nodes, p, true, gpu, net).latency_us;
  };
  auto hops_only = [&](int nodes, nccl_protocol p, double net_hop, double nvl_hop) {
    const double depth = std::log2(nodes);
    return gpu.proto(p).base_us + 2 * (7 * nvl_hop + depth * net_hop);
  };
  const double hop = net.net_tree_hop_us_ll, nvl = net.tree_nvlink_hop_us_ll;
  // Two nodes: the root's single child, no inner node, no extra post.
  EXPECT_NEAR(lat(2, nccl_protocol::ll), hops_only(2, nccl_protocol::ll, hop, nvl), 1e-9);
  // Sixteen nodes: depth 4, three inner nodes on the path, 3 posts up and 3 down.
  EXPECT_NEAR(lat(16, nccl_protocol::ll) - hops_only(16, nccl_protocol::ll, hop, nvl),
              6 * net.proxy_post_us_ll, 1e-9);
  // Simple posts three times per operation (data, flush, ack), so its extra grows three times.
  const double simple_extra = lat(16, nccl_protocol::simple) -
                              hops_only(16, nccl_protocol::simple, net.net_tree_hop_us_simple,
                                        net.tree_nvlink_hop_us_simple);
  EXPECT_NEAR(simple_extra, 6 * net.proxy_post_us_simple, 1e-9);
  EXPECT_GT(simple_extra, 6 * net.proxy_post_us_ll);
}

// From compute capability 9 NCCL's search settles on the simple tree pattern, which its tuner
// scales by 0.85: an H100 tree moves less than an A100 tree with the same NICs and NVLink cap.
TEST_F(SimV2, TreePatternFactorAppliesFromHopperOn) {
  const cluster_spec net = default_cluster(gpu);
  ASSERT_LT(net.tree_pattern_factor, 1.0);
  gpu_spec ampere = gpu;
  ampere.compute_capability_major = 8;
  auto cap = [&](const gpu_spec& g) {
    return across(coll_op::all_reduce, 1ull << 30, 32, nccl_protocol::simple, true, g, net)
        .cap_gbps;
  };
  EXPECT_NEAR(cap(gpu) / cap(ampere), net.tree_pattern_factor, 1e-9);
  // The ring has no pattern factor.
  gpu_spec h = gpu;
  EXPECT_DOUBLE_EQ(
      across(coll_op::all_reduce, 1ull << 30, 32, nccl_protocol::simple, false, h, net).cap_gbps,
      across(coll_op::all_reduce, 1ull << 30, 32, nccl_protocol::simple, false, ampere, net)
          .cap_gbps);
}

TEST_F(SimV2, AllToAllRunsOnP2pChannelsAndOnlyRemoteShardsUseTheNics) {
  // Inside the node: every NCCL p2p channel (32 MiB a peer: 4 parts a peer, 8 peers), and
  // neither NVLS nor the tree; across nodes the send/recv default (tests/unit/test_p2p_channels).
  EXPECT_EQ(plan(coll_op::all_to_all, 256u << 20, 8).channels,
            gpu.default_ctas(coll_op::all_to_all));
  EXPECT_EQ(plan(coll_op::all_to_all, 1ull << 30, 8).algorithm, sim::nccl_algorithm::ring);
  EXPECT_THROW(plan(coll_op::all_to_all, 1ull << 30, 8, "nvls"), config_error);
  EXPECT_THROW(plan(coll_op::all_to_all, 1ull << 30, 16, "tree"), config_error);
  const cluster_spec net = default_cluster(gpu);
  const double nic = net.node_egress_gbps() / net.gpus_per_node;
  const double simple = gpu.proto(nccl_protocol::simple).bw_fraction;
  auto a2a = [&](int ranks) {
    return across(coll_op::all_to_all, 1ull << 30, ranks, nccl_protocol::simple, false, gpu, net);
  };
  // 2 nodes of 8: 8 of a rank's 15 peer shards leave the node, through its own rail NIC.
  EXPECT_NEAR(a2a(16).cap_gbps, nic * 15 / 8 * simple, 1e-9);
  // 8 nodes: 56 of 63 shards are remote, so the bus rate nears the NIC's.
  EXPECT_NEAR(a2a(64).cap_gbps, nic * 63 / 56 * simple, 1e-9);
  // The all-gather ring pushes every byte through the node's whole NIC share instead.
  const double ring_cap =
      across(coll_op::all_gather, 1ull << 30, 16, nccl_protocol::simple, false, gpu, net).cap_gbps;
  EXPECT_LT(a2a(16).cap_gbps, ring_cap);
  // Its n−1 rounds of peers pay a hop each, a network hop once per other node: the ring's
  // latency without the all-reduce's Simple plateau.
  EXPECT_DOUBLE_EQ(a2a(16).latency_us, across(coll_op::all_gather, 1ull << 30, 16,
                                              nccl_protocol::simple, false, gpu, net)
                                           .latency_us);
}

// Ring against tree across nodes, as NCCL's tuner ranks them: the ring's latency grows with the
// ranks (a step each), the tree's with log2 of the nodes, so the size below which the tree wins
// grows with the node count: between 16 and 64 MiB on 4 nodes, past 64 MiB on 16.
TEST_F(SimV2, TreeWinsUpToLargerSizesOnMoreNodes) {
  const cluster_spec net = default_cluster(gpu);
  auto algo = [&](std::uint64_t bytes, int nodes) {
    collective_params c = test::collective(coll_op::all_reduce, bytes, 8 * nodes, 0);
    c.nodes = nodes;
    return sim::plan_nccl_collective(c, gpu, net).algorithm;
  };
  EXPECT_EQ(algo(16u << 20, 4), sim::nccl_algorithm::tree);
  EXPECT_EQ(algo(64u << 20, 4), sim::nccl_algorithm::ring);
  EXPECT_EQ(algo(64u << 20, 16), sim::nccl_algorithm::tree);
  EXPECT_EQ(algo(4ull << 30, 16), sim::nccl_algorithm::ring);
  // Small messages take the tree on any node count; the ring's 2 (n - 1) steps cost too much.
  for (int nodes : {2, 4, 16}) EXPECT_EQ(algo(8, nodes), sim::nccl_algorithm::tree) << nodes;
}

// Two collectives that leave the node at once share its NICs (docs/ARCHITECTURE.md §5.4): each
// moves at half its cap while both move, so together they take about twice as long as one alone,
// and one that starts once the other is done runs at its full rate. NICs of 200 Gb/s, so the
// NICs bind and not NVLink (which two collectives would share too).
TEST_F(SimV2, ConcurrentCollectivesAcrossNodesShareTheNics) {
  const cluster_spec net = default_cluster(gpu, 8, 25);
  ASSERT_LT(net.node_egress_gbps(), 0.6 * gpu.nvlink_effective_gbps());
  sim_options opts;
  opts.cluster = &net;
  collective_params ar = test::collective(coll_op::all_reduce, 1ull << 30, 16, 16);
  ar.algorithm = "ring";
  ar.nodes = 2;
  auto run = [&](bool second_waits) {
    schedule s;
    s.name = "nics";
    s.add_stream("dp", stream_role::comm, -1);
    s.add_stream("other", stream_role::comm, -1);
    s.add_op("first", 0, ar);
    s.add_op("second", 1, ar, second_waits ? std::vector<int>{0} : std::vector<int>{});
    return simulate(s, gpu, opts);
  };
  schedule one;
  one.name = "one";
  one.add_stream("dp", stream_role::comm, -1);
  one.add_op("first", 0, ar);
  const sim_result alone = simulate(one, gpu, opts);
  const double t1 = alone.ops[0].end_us - alone.ops[0].start_us;
  const sim_result both = run(false);
  for (const sim_op_result& o : both.ops) {
    EXPECT_GT(o.end_us - o.start_us, 1.8 * t1) << o.op_id;
    EXPECT_LT(o.end_us - o.start_us, 2.1 * t1) << o.op_id;
  }
  const sim_result serial = run(true);
  EXPECT_NEAR(serial.ops[1].end_us - serial.ops[1].start_us, t1, 0.02 * t1);
  EXPECT_GE(serial.ops[1].start_us, serial.ops[0].end_us);
}

TEST_F(SimV2, ClusterFileMayOverrideNcclNetTuning) {
  const cluster_spec net = load_cluster("dgx_h100");
  const cluster_spec def = default_cluster(gpu);
  EXPECT_DOUBLE_EQ(net.proxy_post_us_simple, def.proxy_post_us_simple);
  EXPECT_DOUBLE_EQ(net.ring_simple_plateau, def.ring_simple_plateau);
  EXPECT_DOUBLE_EQ(net.net_ring_hop_us_simple, def.net_ring_hop_us_simple);
  EXPECT_DOUBLE_EQ(net.net_tree_hop_us_simple, def.net_tree_hop_us_simple);
  EXPECT_DOUBLE_EQ(net.tree_nvlink_hop_us_ll, def.tree_nvlink_hop_us_ll);
  EXPECT_DOUBLE_EQ(net.tree_pattern_factor, def.tree_pattern_factor);
}

}  // namespace
}  // namespace ob
