#include "model/collective_traits.hpp"

#include <algorithm>
#include <array>

namespace ob {
namespace {

// nccl-tests' conventions (its all_gather.cu, reduce_scatter.cu, all_reduce.cu); NCCL's API
// names. See docs/ARCHITECTURE.md §3.2.
constexpr std::array<collective_traits, 3> table = {{
    {coll_op::all_gather, "ncclAllGather", "none", 1, true, false, true, verify_kind::all_gather},
    {coll_op::reduce_scatter, "ncclReduceScatter", "sum", 1, true, true, false,
     verify_kind::reduce_scatter},
    {coll_op::all_reduce, "ncclAllReduce", "sum", 2, false, false, false, verify_kind::all_reduce},
}};

}  // namespace

const collective_traits& traits_of(coll_op op) {
  for (const collective_traits& t : table)
    if (t.op == op) return t;
  return table.front();  // unreachable: every coll_op has a row
}

double collective_traits::bus_factor(int group_size) const {
  if (group_size <= 1) return 0;
  const double n = group_size;
  return ring_passes * (n - 1) / n;
}

int collective_traits::ring_steps(int group_size) const {
  return group_size <= 1 ? 0 : ring_passes * (group_size - 1);
}

double collective_traits::bytes_moved(double size_bytes, int group_size) const {
  if (group_size <= 1) return 0;
  const double n = group_size;
  // Multiplied out in this order so results stay bit-identical to the recorded golden outputs.
  return size_bytes * ring_passes * (n - 1) / n;
}

collective_counts collective_traits::counts(std::uint64_t size_bytes, int group_size,
                                            dtype type) const {
  const std::uint64_t elems = size_bytes / dtype_bytes(type);
  const auto n = static_cast<std::uint64_t>(std::max(group_size, 1));
  collective_counts c;
  c.per_rank = size_spans_group ? elems / n : elems;
  c.send_elems = c.per_rank * (send_holds_group ? n : 1);
  c.recv_elems = c.per_rank * (recv_holds_group ? n : 1);
  return c;
}

std::uint64_t collective_traits::size_multiple(int group_size, dtype type) const {
  const auto n = static_cast<std::uint64_t>(std::max(group_size, 1));
  return dtype_bytes(type) * (size_spans_group ? n : 1);
}

}  // namespace ob
