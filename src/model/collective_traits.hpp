#pragma once
// Everything that differs between the collectives, in one table: how nccl-tests sizes them, the
// element counts NCCL is called with, the bytes a ring moves, the bus-bandwidth factor, the ring
// steps, the NCCL call and how the output is verified. Metrics, the simulator, the CUDA executor
// and the CLI all read it; adding a collective is one row here.
#include <cstdint>
#include <string_view>

#include "model/ir.hpp"
#include "model/verify_kind.hpp"

namespace ob {

// Element counts of one collective whose nccl-tests `size` is a given number of bytes.
struct collective_counts {
  std::uint64_t per_rank = 0;    // the count NCCL is called with (AG send, RS recv, AR buffer)
  std::uint64_t send_elems = 0;  // elements in the send buffer
  std::uint64_t recv_elems = 0;  // elements in the receive buffer
};

struct collective_traits {
  coll_op op;
  std::string_view nccl_call;  // "ncclAllGather"
  std::string_view redop;      // nccl-tests' redop column: "sum", or "none" for a gather
  // Passes over the ring: 1 for all-gather and reduce-scatter, 2 for all-reduce (a
  // reduce-scatter then an all-gather). nccl-tests' bus factor and the ring steps follow from it.
  int ring_passes;
  // `size` spans the group's n per-rank shards (AG, RS) or is one rank's whole buffer (AR).
  bool size_spans_group;
  bool send_holds_group;  // the send buffer holds all n shards (RS)
  bool recv_holds_group;  // the receive buffer holds all n shards (AG)
  verify_kind verify;

  // nccl-tests: busbw = algbw × bus_factor. 0 for one rank, which moves nothing over the bus.
  double bus_factor(int group_size) const;
  // Steps of the ring algorithm, each paying a hop of latency; 0 for one rank.
  int ring_steps(int group_size) const;
  // Bytes one rank moves over its links: size × bus_factor.
  double bytes_moved(double size_bytes, int group_size) const;
  // Sizes that do not divide evenly are rounded down to whole elements per rank.
  collective_counts counts(std::uint64_t size_bytes, int group_size, dtype type) const;
  // The multiple every size must be: whole elements on every rank.
  std::uint64_t size_multiple(int group_size, dtype type) const;
};

const collective_traits& traits_of(coll_op op);

// nccl-tests' send-recv bus factor: one peer, every byte crosses once.
inline constexpr double p2p_bus_factor = 1.0;

}  // namespace ob
