#include "cuda/step_groups.hpp"

#include <set>

#include "base/error.hpp"

namespace ob::cuda {

int coordinate(const rank_grid& grid, comm_group g, int rank) {
  return rank / grid.stride(g) % grid.size(g);
}

comm_key step_comm_key(const op& o, int stage, int pp) {
  comm_key k = comm_key_for(o);
  if (o.kind() != op_kind::p2p) return k;
  const auto& p = o.as<p2p_params>();
  if (p.direction == p2p_direction::exchange) return k;
  if (p.group != comm_group::pp)
    throw config_error("op '" + o.name + "': a one-way send or receive must travel between " +
                       "pipeline stages, not over " + std::string(to_string(p.group)));
  const bool sends = p.direction == p2p_direction::send;
  const int offset = sends ? p.send_peer : p.recv_peer;
  if (offset != 1 && offset != -1)
    throw config_error("op '" + o.name + "': a pipeline transfer goes to an adjacent stage (peer " +
                       "+1 or -1), not " + std::to_string(offset));
  // A send towards the next stage travels on the sender's +1 link; a receive from the previous
  // stage on that stage's +1 link, and so on.
  k.link_step = sends ? offset : -offset;
  k.link_from = sends ? stage : ring_peer(stage, offset, pp);
  k.group_size = 2;
  return k;
}

namespace {

// The rank's group along `g`: every rank that differs from it in that coordinate only.
group_membership along(comm_group g, const rank_grid& grid, int rank) {
  const int c = coordinate(grid, g, rank);
  return {rank - c * grid.stride(g), c, grid.size(g)};
}

// Two stages of one (tp, cp, dp) position: `first` at position 0, `second` at 1.
group_membership stage_pair(int first, int second, const rank_grid& grid, int rank) {
  const int stage = stage_of(grid, rank);
  if (stage != first && stage != second) return {-1, 0, 2};
  const group_membership m = along(comm_group::pp, grid, rank);
  return {m.color, stage == first ? 0 : 1, 2};
}

// The layout in words, for the refusals below.
std::string layout_text(const rank_grid& grid) {
  return "(tp " + std::to_string(grid.tp) + ", cp " + std::to_string(grid.cp) + ", dp " +
         std::to_string(grid.dp) + ", pp " + std::to_string(grid.pp) + ")";
}

// One level of a hierarchical group, as Megatron-Core's create_hierarchical_groups splits a CP
// group of sizes [A, P] (docs/ARCHITECTURE.md §9.3): the level of `size` ranks `stride` apart
// along the group's coordinate, in blocks of stride x size (the a2a level: stride 1, A
// neighbours; the ring level: stride A). Colour: the global rank of its first member.
group_membership level_of(const comm_key& key, const rank_grid& grid, int rank,
                          const std::string& op_name) {
  const int stride = key.level_stride, size = key.group_size, whole = grid.size(key.group);
  if (size < 1 || whole % (stride * size) != 0)
    throw config_error("op '" + op_name + "' needs a level of " + std::to_string(size) + " ranks " +
                       std::to_string(stride) + " apart in its " +
                       std::string(to_string(key.group)) + " group, which the step's layout " +
                       layout_text(grid) + " does not divide into");
  const int c = coordinate(grid, key.group, rank);
  const int first = c / (stride * size) * stride * size + c % stride;
  return {rank - (c - first) * grid.stride(key.group), c / stride % size, size};
}

}  // namespace

group_membership step_membership(const comm_key& key, const rank_grid& grid, int rank,
                                 const std::string& op_name) {
  if (key.link_from >= 0)
    return stage_pair(key.link_from, ring_peer(key.link_from, key.link_step, grid.pp), grid, rank);
  if (key.level_stride > 0) return level_of(key, grid, rank, op_name);
  if (key.group_size == grid.size(key.group)) return along(key.group, grid, rank);
  if (key.group_size == grid.world()) return {0, rank, grid.world()};
  if (key.group == comm_group::pp && key.group_size == 2 && grid.pp > 2)
    return stage_pair(0, grid.pp - 1, grid, rank);
  throw config_error("op '" + op_name + "' needs a " + std::string(to_string(key.group)) +
                     " group of " + std::to_string(key.group_size) +
                     " ranks, which the step's layout " + layout_text(grid) + " does not have");
}

variant_schedules stage_schedules(const program_variants& pv, const measure_options& m, int stage) {
  variant_schedules out;
  for (variant v : all_variants) {
    const auto i = static_cast<std::size_t>(v);
    if (!m.measures(v)) continue;
    if (stage < 0 || stage >= static_cast<int>(pv[i].stages.size()))
      throw config_error("the " + std::string(to_string(v)) + " program has " +
                         std::to_string(pv[i].stages.size()) + " stage(s); stage " +
                         std::to_string(stage) + " does not exist");
    out[i] = pv[i].stages[static_cast<std::size_t>(stage)];
  }
  return out;
}

std::vector<comm_key> program_comm_keys(const program_variants& pv, const measure_options& m) {
  std::set<comm_key> keys;
  for (variant v : all_variants) {
    if (!m.measures(v)) continue;
    const program& p = pv[static_cast<std::size_t>(v)];
    const int pp = static_cast<int>(p.stages.size());
    for (int s = 0; s < pp; ++s)
      for (const op& o : p.stages[static_cast<std::size_t>(s)].ops)
        if (o.is_comm()) keys.insert(step_comm_key(o, s, pp));
  }
  return {keys.begin(), keys.end()};
}

}  // namespace ob::cuda
