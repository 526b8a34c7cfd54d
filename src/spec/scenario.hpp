#pragma once
// A scenario file (configs/scenarios/*.json): what to run and which axes to sweep. Sweep axes
// are data: every axis is a list of values, and `--set key=v1,v2` replaces a list or a scalar.
#include <optional>
#include <string>
#include <vector>

#include "base/json_util.hpp"
#include "model/knobs.hpp"
#include "model/workload.hpp"
#include "spec/sweep_axes.hpp"

namespace ob {

// Transformer Engine's launch-ordering event: auto = on where TE uses it (Hopper with CDMC > 1),
// on, or off.
enum class launch_ordering { automatic, on, off };
template <>
struct enum_names<launch_ordering> {
  static constexpr std::string_view noun = "te_launch_ordering";
  static constexpr std::array names = {enum_entry{launch_ordering::automatic, "auto"},
                                       enum_entry{launch_ordering::on, "on"},
                                       enum_entry{launch_ordering::off, "off"}};
};

struct layer_scenario {
  std::string file;  // where it came from, for messages
  std::string gpu = "h100_sxm";
  std::string model = "gpt3_175b";
  parallel_layout layout;
  std::optional<std::int64_t> micro_batch;  // overrides the model's
  std::optional<std::int64_t> seq_length;   // overrides the model's
  std::string preset;         // userbuffers preset for method "preset" (empty = TE defaults)
  std::string bridge_config;  // a Bridge-style config to resolve (docs/ARCHITECTURE.md §4)
  int layernorm_sm_margin = 0;
  launch_ordering te_launch_ordering = launch_ordering::automatic;
  bool forward = true, backward = true;
  std::vector<sweep_axis> axes;  // method, cdmc, order, sm_margin, comm_ctas, priority
  int warmup = 5, iters = 20;
  bool graphs = false;
};

layer_scenario load_layer_scenario(const std::string& path);

// The "scenario" field of a scenario file ("layer" or "step"), so `run` can hand it to the right
// loader. Errors name the file (exit 2).
std::string scenario_kind(const std::string& ref);

// Applies one `--set key=v1,v2` override. Axis keys replace the axis' values; scalar keys
// (gpu, model, preset, tp, cp, dp, pp, sequence_parallel, micro_batch, seq_length,
// layernorm_sm_margin, te_launch_ordering, passes, iters, warmup) replace the field. Unknown keys
// are config errors.
void apply_override(layer_scenario& sc, const std::string& assignment);

const sweep_axis& axis(const layer_scenario& sc, std::string_view name);

// The layer scenario's sweep, every axis in sweep_axis_names order.
std::vector<sweep_case> expand_cases(const layer_scenario& sc);

// The default scenario: GPT-3 175B TP4 with its preset, cdmc {1, 8, 32} x order x sm_margin
// {0, 8, 16, 24, 32}, methods preset and none.
std::string default_scenario_path();

}  // namespace ob
