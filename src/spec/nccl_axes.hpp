#pragma once
// NCCL's communicator settings given as flags (pair, coll) rather than in a scenario's sweep:
// the optional axes of spec/sweep_axes.hpp (docs/ARCHITECTURE.md §5.5), checked against one
// collective before anything runs.
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "model/gpu_spec.hpp"
#include "model/ir.hpp"
#include "spec/sweep_axes.hpp"

namespace ob {

// One line of help per NCCL axis, in nccl_axis_names order.
inline constexpr std::string_view nccl_axis_help[] = {
    "NCCL CTA policy: default | efficiency | zero (copy-engine all-gather, NCCL 2.28)",
    "symmetric memory windows: on | off (NCCL 2.27)",
    "the communicator's minCTAs (0 = NCCL's)",
    "the communicator's maxCTAs (0 = NCCL's)",
    "sim algorithm: auto | ring | nvls | nvls_tree | tree",
    "the NCCL version the settings are checked against (sim default 2.28)",
    "NCCL 2.31's per-collective maxCTAs: N, or all_gather:4+reduce_scatter:16"};
static_assert(std::size(nccl_axis_help) == std::size(nccl_axis_names));

using nccl_axis_values = std::array<std::string, std::size(nccl_axis_names)>;

// The axes given ("" = not given), each a comma list split into its values.
std::vector<sweep_axis> nccl_axes_given(const nccl_axis_values& given);

// Every combination of `axes` parsed and checked against `c` on `gpu` (exit 2 naming the flag,
// or why NCCL cannot run it); the first combination is set on `c`.
void apply_nccl_axes(const std::vector<sweep_axis>& axes, const gpu_spec& gpu,
                     collective_params& c);

}  // namespace ob
