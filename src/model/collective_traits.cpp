#include "model/collective_traits.hpp"

#include <algorithm>
#include <array>

namespace ob {
namespace {

// nccl-tests' conventions (its all_gather.cu, reduce_scatter.cu, all_reduce.cu, alltoall.cu);
// NCCL's API names and algorithm rules. See docs/ARCHITECTURE.md §3.2.
constexpr collective_sim_hooks gather_like{};
constexpr collective_sim_hooks reduce_all{true, true, true, network_shape::ring};
constexpr collective_sim_hooks exchange{false, false, false, network_shape::pairwise};

constexpr std::array<collective_traits, 4> table = {{
    {coll_op::all_gather, "ncclAllGather", "none", 1, true, false, true, verify_kind::all_gather,
     "all_gather", gather_like},
    {coll_op::reduce_scatter, "ncclReduceScatter", "sum", 1, true, true, false,
     verify_kind::reduce_scatter, "reduce_scatter", gather_like},
    {coll_op::all_reduce, "ncclAllReduce", "sum", 2, false, false, false, verify_kind::all_reduce,
     "all_reduce", reduce_all},
    {coll_op::all_to_all, "ncclSend/ncclRecv", "none", 1, true, true, true, verify_kind::all_to_all,
     "all_to_all", exchange},
}};

constexpr bool rows_in_enum_order() {
  for (std::size_t i = 0; i < table.size(); ++i)
    if (static_cast<std::size_t>(table[i].op) != i) return false;
  return table.size() == enum_names<coll_op>::names.size();
}
static_assert(rows_in_enum_order(), "one row per coll_op, in its order");

}  // namespace

const collective_traits& traits_of(coll_op op) { return table.at(static_cast<std::size_t>(op)); }

std::span<const collective_traits> all_collectives() { return table; }

std::vector<std::string> collective_names() {
  std::vector<std::string> out;
  for (const auto& e : enum_names<coll_op>::names) out.emplace_back(e.name);
  return out;
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
