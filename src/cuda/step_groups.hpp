#pragma once
// A training step on real GPUs (docs/ARCHITECTURE.md §5.2): which pipeline stage a rank runs,
// and which ranks form each communicator its ops need. Every rank takes its coordinate from the
// step's rank grid in Megatron's order (tp fastest, then cp, dp, pp). Pure C++ (no CUDA header),
// unit-tested without a GPU.
#include <string>
#include <vector>

#include "cuda/schedule_prep.hpp"
#include "model/cluster.hpp"
#include "model/executor.hpp"

namespace ob::cuda {

// A rank's coordinate along `g` in the layout.
int coordinate(const rank_grid& grid, comm_group g, int rank);
inline int stage_of(const rank_grid& grid, int rank) {
  return coordinate(grid, comm_group::pp, rank);
}

// The communicator an op of pipeline stage `stage` (of `pp`) lowers to. A pipeline send or
// receive travels on the link between its two stages, one communicator per direction, so that
// each link carries one stream's ops on either side and NCCL's in-order matching of the sends
// and receives between two ranks is the program's own order. Other ops: comm_key_for.
comm_key step_comm_key(const op& o, int stage, int pp);

// This rank in the communicator of `key`: its coordinate group (every rank whose other
// coordinates equal its own; position = its coordinate), the whole world (a group as large as
// the job: the gradient-norm all-reduce), Megatron's embedding group (pp group of 2 when
// pp > 2: the first and the last stage), a pipeline link (the sender at position 0, the
// receiver at 1) or a level of a hierarchical CP group (key.level_stride > 0: the level's
// ranks in Megatron-Core's order, position = its index in the level). color < 0: not a member
// (ncclCommSplit's NCCL_SPLIT_NOCOLOR). Throws config_error naming the op for a group that fits
// none of these, or a level that does not divide its group.
group_membership step_membership(const comm_key& key, const rank_grid& grid, int rank,
                                 const std::string& op_name);

// The measured variants of one stage, as a case's variant schedules.
variant_schedules stage_schedules(const program_variants& pv, const measure_options& m, int stage);

// Every communicator any stage of the measured variants needs, sorted. ncclCommSplit is
// collective over the world: each rank creates all of them in this order, members or not.
std::vector<comm_key> program_comm_keys(const program_variants& pv, const measure_options& m);

}  // namespace ob::cuda
