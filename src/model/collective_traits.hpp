#pragma once
// Everything that differs between the collectives, in one table: how nccl-tests sizes them, the
// element counts NCCL is called with, the bytes a ring moves, the bus-bandwidth factor, the ring
// steps, the NCCL call, how the output is verified, the GPU file's default-CTA key and the
// simulator's hooks. Metrics, the simulator, the CUDA lowering, result readers and the CLI all
// read it. Adding a collective is its `coll_op` name (model/ir.hpp), one row here, and its
// kernels: the NCCL call (cuda/action_launch.cpp) and its check pattern (kernels/pattern.hpp);
// docs/ARCHITECTURE.md §10.1.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/ir.hpp"
#include "model/verify_kind.hpp"

namespace ob {

// Element counts of one collective whose nccl-tests `size` is a given number of bytes.
struct collective_counts {
  std::uint64_t per_rank = 0;    // the count NCCL is called with (AG send, RS recv, AR buffer,
                                 // A2A per peer)
  std::uint64_t send_elems = 0;  // elements in the send buffer
  std::uint64_t recv_elems = 0;  // elements in the receive buffer
};

// How the simulator's network model bounds a collective whose group spans nodes.
enum class network_shape {
  ring,      // every byte a rank moves passes the node boundary on the ring: the NIC share caps it
  pairwise,  // each rank sends its peers' shards directly: only remote peers' shards use the NICs
};

// What the simulator needs to know beyond the bytes (sim/nccl_model.cpp, sim/network_model.cpp).
struct collective_sim_hooks {
  bool nvls = false;            // NCCL runs it on NVLink SHARP inside one node
  bool tree = false;            // NCCL runs it on its tree across nodes
  bool simple_plateau = false;  // Simple's ring latency plateau (cluster `ring_simple_plateau`)
  network_shape across_nodes = network_shape::ring;
};

struct collective_traits {
  coll_op op;
  std::string_view nccl_call;  // "ncclAllGather"; grouped calls name what runs ("ncclSend/Recv")
  std::string_view redop;      // nccl-tests' redop column: "sum", or "none" for a gather
  // Passes over the ring: 1 for all-gather, reduce-scatter and all-to-all, 2 for all-reduce (a
  // reduce-scatter then an all-gather). nccl-tests' bus factor and the ring steps follow from it.
  int ring_passes;
  // `size` spans the group's n per-rank shards (AG, RS, A2A) or is one rank's whole buffer (AR).
  bool size_spans_group;
  bool send_holds_group;  // the send buffer holds all n shards (RS, A2A)
  bool recv_holds_group;  // the receive buffer holds all n shards (AG, A2A)
  verify_kind verify;
  // The key of the GPU file's `sim.nccl_default_ctas` that gives its channels when an op asks
  // for the library default: NCCL runs an all-to-all as grouped send/recv, on its p2p channels.
  std::string_view ctas_key;
  collective_sim_hooks sim;

  // nccl-tests: busbw = algbw × bus_factor. 0 for one rank, which moves nothing over the bus.
  double bus_factor(int group_size) const;
  // Steps of the ring algorithm (an all-to-all's rounds of peers), each paying a hop of
  // latency; 0 for one rank.
  int ring_steps(int group_size) const;
  // Bytes one rank moves over its links: size × bus_factor.
  double bytes_moved(double size_bytes, int group_size) const;
  // Sizes that do not divide evenly are rounded down to whole elements per rank.
  collective_counts counts(std::uint64_t size_bytes, int group_size, dtype type) const;
  // The multiple every size must be: whole elements on every rank.
  std::uint64_t size_multiple(int group_size, dtype type) const;
};

const collective_traits& traits_of(coll_op op);
// Every row, in `coll_op` order.
std::span<const collective_traits> all_collectives();
// The canonical names ("all_gather", ...), for readers that check a stored `op`.
std::vector<std::string> collective_names();

// nccl-tests' send-recv bus factor: one peer, every byte crosses once.
inline constexpr double p2p_bus_factor = 1.0;

}  // namespace ob
