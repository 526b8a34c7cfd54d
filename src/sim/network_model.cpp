#include "sim/network_model.hpp"

#include <algorithm>
#include <cmath>

#include "model/collective_traits.hpp"

namespace ob::sim {
namespace {

double ring_net_hop_us(nccl_protocol p, const cluster_spec& n) {
  switch (p) {
    case nccl_protocol::ll:
      return n.net_ring_hop_us_ll;
    case nccl_protocol::ll128:
      return n.net_ring_hop_us_ll128;
    case nccl_protocol::simple:
      return n.net_ring_hop_us_simple;
  }
  return n.net_ring_hop_us_simple;
}
double tree_net_hop_us(nccl_protocol p, const cluster_spec& n) {
  switch (p) {
    case nccl_protocol::ll:
      return n.net_tree_hop_us_ll;
    case nccl_protocol::ll128:
      return n.net_tree_hop_us_ll128;
    case nccl_protocol::simple:
      return n.net_tree_hop_us_simple;
  }
  return n.net_tree_hop_us_simple;
}

// What one group can push between nodes: its share of the node's NICs (the node's other
// GPUs run their own groups at the same time), never more than NVLink carries inside the node.
double group_cap_gbps(int ranks_per_node, const gpu_spec& gpu, const cluster_spec& net) {
  const double share = net.node_egress_gbps() * ranks_per_node / net.gpus_per_node;
  return std::min(share, gpu.nvlink_effective_gbps());
}

}  // namespace

network_cost inter_node_collective(const collective_params& c, nccl_protocol proto, bool tree,
                                   const gpu_spec& gpu, const cluster_spec& net) {
  const collective_traits& t = traits_of(c.op);
  const int n = std::max(c.group_size, 1);
  const int nodes = std::clamp(c.nodes, 1, n);
  const int per_node = std::max(1, n / nodes);
  const nccl_protocol_constants& k = gpu.proto(proto);
  network_cost cost;
  // The protocol carries a fraction of what the NICs move (LL: half its lines are flags).
  cost.cap_gbps = group_cap_gbps(per_node, gpu, net) * k.bw_fraction;
  if (!tree) {
    // A ring step that crosses a node boundary pays the network hop, the others the NVLink hop.
    const int steps = t.ring_steps(n);
    const int inter = t.ring_passes * (nodes - 1);
    cost.latency_us =
        k.base_us + (steps - 1 - inter) * k.hop_us + inter * ring_net_hop_us(proto, net);
    return cost;
  }
  // NCCL's tree: up and down a chain inside the node and a binary tree across nodes; about 10 %
  // less bandwidth than the ring, so it wins on latency only.
  cost.tree = true;
  cost.cap_gbps *= 0.9;
  cost.latency_us = k.base_us + 2.0 * ((per_node - 1) * k.hop_us +
                                       std::log2(nodes) * tree_net_hop_us(proto, net));
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
