#pragma once
// Communication that leaves the NVLink domain (docs/ARCHITECTURE.md §5.4): a collective over a
// group that spans nodes, or a send/recv between nodes. Latency follows NCCL's own tuning model
// (a protocol base, then a hop latency per ring step, NVLink hops and network hops apart, or
// NCCL's tree for all-reduce); bandwidth is bounded by the node's NICs, shared by the
// groups of the node that communicate at the same time.
#include "model/cluster.hpp"
#include "model/gpu_spec.hpp"
#include "model/ir.hpp"

namespace ob::sim {

struct network_cost {
  double latency_us = 0;
  double cap_gbps = 0;  // bus bandwidth the op cannot exceed (nccl-tests busbw units)
  bool tree = false;    // all-reduce chose NCCL's tree
};

// A collective whose group spans c.nodes > 1 nodes, with NCCL protocol `proto`, on the ring or
// (all-reduce) the tree; sim/nccl_model.cpp picks among them as NCCL's tuner would.
network_cost inter_node_collective(const collective_params& c, nccl_protocol proto, bool tree,
                                   const gpu_spec& gpu, const cluster_spec& net);
// A send/recv between two nodes.
network_cost inter_node_p2p(const p2p_params& p, nccl_protocol proto, const gpu_spec& gpu,
                            const cluster_spec& net);

}  // namespace ob::sim
