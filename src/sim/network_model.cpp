#include "sim/network_model.hpp"

#include <algorithm>
#include <cmath>

#include "core/collective_traits.hpp"

namespace ob::sim {
namespace {

enum class protocol { ll, simple };

// NCCL picks LL for small messages and Simple for large ones (the same threshold as on NVLink).
protocol protocol_for(double bytes_per_rank, const gpu_spec& gpu) {
  return bytes_per_rank <= gpu.nccl_ll_max_bytes_per_rank ? protocol::ll : protocol::simple;
}

double base_us(protocol p, const gpu_spec& gpu) {
  return p == protocol::ll ? gpu.nccl_step_us_ll : gpu.nccl_step_us_simple;
}
double ring_net_hop_us(protocol p, const cluster_spec& n) {
  return p == protocol::ll ? n.net_ring_hop_us_ll : n.net_ring_hop_us_simple;
}
double tree_net_hop_us(protocol p, const cluster_spec& n) {
  return p == protocol::ll ? n.net_tree_hop_us_ll : n.net_tree_hop_us_simple;
}

// What one group can push between nodes: its share of the node's NICs (the node's other
// GPUs run their own groups at the same time), never more than NVLink carries inside the node.
double group_cap_gbps(int ranks_per_node, const gpu_spec& gpu, const cluster_spec& net) {
  const double share = net.node_egress_gbps() * ranks_per_node / net.gpus_per_node;
  return std::min(share, gpu.nvlink_effective_gbps());
}

}  // namespace

network_cost inter_node_collective(const collective_params& c, const gpu_spec& gpu,
                                   const cluster_spec& net) {
  const collective_traits& t = traits_of(c.op);
  const int n = std::max(c.group_size, 1);
  const int nodes = std::clamp(c.nodes, 1, n);
  const int per_node = std::max(1, n / nodes);
  const protocol proto = protocol_for(static_cast<double>(c.bytes) / n, gpu);
  network_cost ring;
  ring.cap_gbps = group_cap_gbps(per_node, gpu, net);
  // A ring step that crosses a node boundary pays the network hop, the others the NVLink hop.
  const int steps = t.ring_steps(n);
  const int inter = t.ring_passes * (nodes - 1);
  ring.latency_us =
      base_us(proto, gpu) + (steps - inter) * gpu.nccl_hop_us + inter * ring_net_hop_us(proto, net);
  if (c.op != coll_op::all_reduce) return ring;
  // NCCL's tree: up and down a chain inside the node and a binary tree across nodes; about 10 %
  // less bandwidth than the ring, so it wins on latency only.
  network_cost tree;
  tree.tree = true;
  tree.cap_gbps = 0.9 * ring.cap_gbps;
  tree.latency_us = base_us(proto, gpu) + 2.0 * ((per_node - 1) * gpu.nccl_hop_us +
                                                 std::log2(nodes) * tree_net_hop_us(proto, net));
  const double moved = t.bytes_moved(static_cast<double>(c.bytes), n) / 1e3;  // bytes per µs/GBps
  const double ring_us = ring.latency_us + moved / ring.cap_gbps;
  const double tree_us = tree.latency_us + moved / tree.cap_gbps;
  return tree_us < ring_us ? tree : ring;
}

network_cost inter_node_p2p(const p2p_params&, const gpu_spec& gpu, const cluster_spec& net) {
  network_cost c;
  // The GPU's own rail NIC (one per GPU on a rail-optimized node).
  c.cap_gbps = std::min(net.node_egress_gbps() / net.gpus_per_node, gpu.nvlink_effective_gbps());
  c.latency_us = gpu.nccl_step_us_simple + net.net_ring_hop_us_simple;
  return c;
}

}  // namespace ob::sim
