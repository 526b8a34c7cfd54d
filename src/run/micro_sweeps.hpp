#pragma once
// Stage 2 of the pipeline (run/pipeline.hpp) for the two microbenchmarks: `pair` (one GEMM
// beside one collective) and `coll` (one collective alone over sizes, nccl-tests style). The CLI
// parses flags into these requests; the rules (size multiples, what is not modelled, what the
// result records) live here.
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/metrics.hpp"
#include "model/communicator.hpp"
#include "model/executor.hpp"
#include "model/gpu_spec.hpp"
#include "plan/plan.hpp"
#include "run/sweep.hpp"

namespace ob {

// `pair`: the sweep over `axes` (any of cdmc, order, sm_margin, comm_ctas, priority; `where`
// prefixes errors, e.g. "pair --"; callers may set a clearer `source`). Throws config_error when
// the size does not split into whole elements per rank.
sweep_request pair_sweep(const pair_spec& p, const std::vector<sweep_axis>& axes,
                         const std::string& where, const gpu_spec& gpu);

// `coll`: one collective over sizes. `c.bytes` is ignored; `sizes` are nccl-tests sizes.
struct coll_request {
  collective_params c;
  std::vector<std::uint64_t> sizes;
  measure_options measure;
  fault_injection inject;  // test hook; case = the size's row
};
// Sizes from `lo` to `hi`, each `factor` times the last (nccl-tests' -b -e -f).
std::vector<std::uint64_t> size_range(std::uint64_t lo, std::uint64_t hi, std::uint64_t factor);
// Throws config_error naming `field` when a size is not whole elements on every rank.
void check_coll_sizes(const coll_request& r, const std::string& field);
// One nccl-tests row per size, measured on the comm-only variant and reduced across ranks.
std::vector<coll_row> run_coll(const coll_request& r, executor& exec, communicator& comm);

}  // namespace ob
