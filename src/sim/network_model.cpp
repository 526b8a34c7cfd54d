#include "sim/network_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "model/collective_traits.hpp"

namespace ob::sim {
namespace {

// One figure per NCCL protocol, picked for `p`.
double by_protocol(nccl_protocol p, double ll, double ll128, double simple) {
  switch (p) {
    case nccl_protocol::ll:
      return ll;
    case nccl_protocol::ll128:
      return ll128;
    case nccl_protocol::simple:
      return simple;
  }
  return simple;
}

double ring_net_hop_us(nccl_protocol p, const cluster_spec& n) {
  return by_protocol(p, n.net_ring_hop_us_ll, n.net_ring_hop_us_ll128, n.net_ring_hop_us_simple);
}
double tree_net_hop_us(nccl_protocol p, const cluster_spec& n) {
  return by_protocol(p, n.net_tree_hop_us_ll, n.net_tree_hop_us_ll128, n.net_tree_hop_us_simple);
}

// What one group can push between nodes: its share of the node's NICs (the node's other
// GPUs run their own groups at the same time), never more than NVLink carries inside the node.
double group_cap_gbps(int ranks_per_node, const gpu_spec& gpu, const cluster_spec& net) {
  const double share = net.node_egress_gbps() * ranks_per_node / net.gpus_per_node;
  return std::min(share, gpu.nvlink_effective_gbps());
}

// An all-to-all sends each peer its shard directly: of the size × (n−1)/n bytes a rank moves
// (nccl-tests' bus bytes), only the size × (n − per_node)/n addressed to other nodes leave
// through its rail NIC, so the bus rate the NIC allows is its rate × (n−1)/(n − per_node); the
// shards to the node's own peers go over NVLink at the same time.
double pairwise_cap_gbps(int ranks, int ranks_per_node, const gpu_spec& gpu,
                         const cluster_spec& net) {
  const double nic_gbps = net.node_egress_gbps() / net.gpus_per_node;
  const double remote = std::max(ranks - ranks_per_node, 1);
  return std::min(nic_gbps * (ranks - 1) / remote, gpu.nvlink_effective_gbps());
}

// The tree's chain inside a node: NCCL's tree row of NVLink hop latencies, not the ring's.
double tree_nvlink_hop_us(nccl_protocol p, const cluster_spec& n) {
  return by_protocol(p, n.tree_nvlink_hop_us_ll, n.tree_nvlink_hop_us_ll128,
                     n.tree_nvlink_hop_us_simple);
}

// From compute capability 9.0 on NCCL's topology search falls back from the balanced tree to the
// simple tree pattern, whose bandwidth its tuner scales down (docs/CALIBRATION.md §2.6).
double tree_pattern_factor(const gpu_spec& gpu, const cluster_spec& n) {
  return gpu.compute_capability_major >= 9 ? n.tree_pattern_factor : 1.0;
}

// The proxy thread posts every step of a ring that crosses nodes, so even a step inside the node
// costs at least one post (NCCL's net overhead; Simple posts three times: data, flush, ack).
double proxy_post_us(nccl_protocol p, const cluster_spec& n) {
  return by_protocol(p, n.proxy_post_us_ll, n.proxy_post_us_ll128, n.proxy_post_us_simple);
}

// LL's flag-per-8-bytes lines go through the proxy's host-side polling across nodes: NCCL caps
// its bus bandwidth at a figure that falls with the number of nodes.
double ll_max_busbw(int nodes, const cluster_spec& n) {
  return nodes <= 2 ? n.ll_max_busbw_gbps_2_nodes : n.ll_max_busbw_gbps_more;
}

// NCCL's correction of the tree's bandwidth at medium sizes (its tuner's measured shape), by
// protocol and log2(bytes / 64); sizes outside the table keep the full bandwidth.
// Figures: docs/CALIBRATION.md §2.6.
constexpr int tree_size_bins = 23;
constexpr double tree_size_factor[3][tree_size_bins] = {
    {1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7,  .7,  .7,  .6, .5,
     .4,  .4,  .5,  .6,  .7, .8, .9, 1.0, 1.0, 1.0, 1.0},
    {1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7,  .6, .6,
     .6,  .6,  .6,  .6,  .8,  .9, .9, .9, .9, 1.0, 1.0},
    {.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9}};

double tree_size_correction(nccl_protocol p, std::uint64_t bytes) {
  if (bytes < 64) return 1.0;
  const int bin = static_cast<int>(std::floor(std::log2(static_cast<double>(bytes / 64))));
  if (bin >= tree_size_bins) return 1.0;
  return tree_size_factor[static_cast<int>(p)][bin];
}

// Levels of NCCL's binary tree across `nodes` nodes (docs/CALIBRATION.md §2.6: the root has one
// child, every inner node two): floor(log2(nodes)) network hops from the root to the deepest leaf.
double tree_depth(int nodes) { return std::floor(std::log2(static_cast<double>(nodes))); }

// The proxy thread posts every network operation one after another (NCCL's net overhead per
// post). NCCL's tuner charges one hop per tree level; on the deepest path every level
// below the root's single child is an inner node with two children, whose proxy posts a receive
// for each child going up and a send to each going down: one post more per level and direction
// than the hop counts (docs/CALIBRATION.md §2.6).
double tree_second_child_posts_us(double depth, nccl_protocol p, const cluster_spec& n) {
  return 2.0 * std::max(depth - 1.0, 0.0) * proxy_post_us(p, n);
}

// The ring: a step that crosses a node boundary pays the network hop, the others the NVLink hop
// but never less than one proxy post. A Simple all-reduce past its smallest sizes pays NCCL's
// plateau factor on the whole latency.
double ring_latency_us(const collective_params& c, nccl_protocol proto, int nodes,
                       const gpu_spec& gpu, const cluster_spec& net) {
  const collective_traits& t = traits_of(c.op);
  const nccl_protocol_constants& k = gpu.proto(proto);
  const int n = std::max(c.group_size, 1);
  const int steps = t.ring_steps(n);
  const int inter = t.ring_passes * (nodes - 1);
  const double intra_hop = std::max(k.hop_us, proxy_post_us(proto, net));
  double lat = k.base_us + (steps - 1 - inter) * intra_hop + inter * ring_net_hop_us(proto, net);
  const int channels = c.ctas > 0 ? c.ctas : gpu.default_ctas(c.op);
  const bool past_small = static_cast<double>(c.bytes) / (channels * n) >= 64;
  if (proto == nccl_protocol::simple && t.sim.simple_plateau && past_small)
    lat *= net.ring_simple_plateau;
  return lat;
}

}  // namespace

network_cost inter_node_collective(const collective_params& c, nccl_protocol proto, bool tree,
                                   const gpu_spec& gpu, const cluster_spec& net) {
  const int n = std::max(c.group_size, 1);
  const int nodes = std::clamp(c.nodes, 1, n);
  const int per_node = std::max(1, n / nodes);
  const nccl_protocol_constants& k = gpu.proto(proto);
  network_cost cost;
  // The protocol carries a fraction of what the NICs move (LL: half its lines are flags).
  cost.cap_gbps = (traits_of(c.op).sim.across_nodes == network_shape::pairwise
                       ? pairwise_cap_gbps(n, per_node, gpu, net)
                       : group_cap_gbps(per_node, gpu, net)) *
                  k.bw_fraction;
  if (proto == nccl_protocol::ll) cost.cap_gbps = std::min(cost.cap_gbps, ll_max_busbw(nodes, net));
  if (!tree) {
    cost.latency_us = ring_latency_us(c, proto, nodes, gpu, net);
    return cost;
  }
  // NCCL's tree: up and down a chain inside the node and a binary tree of depth log2(nodes)
  // across nodes; its bandwidth factor, its pattern's, and its tuner's correction at medium
  // sizes. Each hop of the chain inside the node costs NCCL's tree NVLink hop.
  cost.tree = true;
  cost.cap_gbps *=
      net.tree_bw_factor * tree_pattern_factor(gpu, net) * tree_size_correction(proto, c.bytes);
  const double depth = tree_depth(nodes);
  cost.latency_us = k.base_us +
                    2.0 * ((per_node - 1) * tree_nvlink_hop_us(proto, net) +
                           depth * tree_net_hop_us(proto, net)) +
                    tree_second_child_posts_us(depth, proto, net);
  return cost;
}

network_cost inter_node_p2p(const p2p_params&, nccl_protocol proto, const gpu_spec& gpu,
                            const cluster_spec& net) {
  network_cost c;
  // The GPU's own rail NIC (one per GPU on a rail-optimized node).
  c.cap_gbps = std::min(net.node_egress_gbps() / net.gpus_per_node, gpu.nvlink_effective_gbps()) *
               gpu.proto(proto).bw_fraction;
  c.latency_us = gpu.proto(proto).base_us + ring_net_hop_us(proto, net);
  return c;
}

}  // namespace ob::sim
