#pragma once
// A scenario file (configs/scenarios/*.json): what to run and which axes to sweep. Sweep axes
// are data: every axis is a list of values, and `--set key=v1,v2` replaces a list or a scalar.
#include <optional>
#include <string>
#include <vector>

#include "core/json_util.hpp"
#include "core/plan.hpp"
#include "core/workload.hpp"

namespace ob {

// One axis value as text ("8", "comm_first", "preset"); parsed when a case is built so errors
// name the axis.
struct sweep_axis {
  std::string name;
  std::vector<std::string> values;
};

struct layer_scenario {
  std::string file;  // where it came from, for messages
  std::string gpu = "h100_sxm";
  std::string model = "gpt3_175b";
  parallel_layout layout;
  std::optional<std::int64_t> micro_batch;  // overrides the model's
  std::optional<std::int64_t> seq_length;   // overrides the model's
  std::string preset;         // userbuffers preset for method "preset" (empty = TE defaults)
  std::string bridge_config;  // a Bridge-style config to resolve (DESIGN §3), optional
  int layernorm_sm_margin = 0;
  // Transformer Engine's launch-ordering event: auto = on where TE uses it (Hopper with
  // CDMC > 1), on, or off.
  std::string te_launch_ordering = "auto";
  bool forward = true, backward = true;
  std::vector<sweep_axis> axes;  // method, cdmc, order, sm_margin, comm_ctas, priority
  int warmup = 5, iters = 20;
  bool graphs = false;
};

// The axes a layer scenario sweeps, in the order cases are enumerated (cdmc outermost, so a
// real backend runs one process per CDMC value).
inline constexpr const char* layer_axis_names[] = {"cdmc",      "method",    "order",
                                                   "sm_margin", "comm_ctas", "priority"};

layer_scenario load_layer_scenario(const std::string& path);

// Applies one `--set key=v1,v2` override. Axis keys replace the axis' values; scalar keys
// (gpu, model, preset, tp, cp, dp, pp, sequence_parallel, micro_batch, seq_length,
// layernorm_sm_margin, te_launch_ordering, passes, iters, warmup) replace the field. Unknown keys
// are config errors.
void apply_override(layer_scenario& sc, const std::string& assignment);

const sweep_axis& axis(const layer_scenario& sc, std::string_view name);

// One point of the sweep.
struct layer_case {
  std::string id;      // "cdmc=8,method=preset,order=comm_first,..."
  std::string method;  // preset | te_default | none
  int cdmc = 8;
  plan_knobs knobs;
  ordered_json params;  // the axis values, typed
};

// Cartesian product of `axes` in the given order (last fastest); values are validated here and
// errors name `where` + the axis. Axes may be any subset of layer_axis_names.
std::vector<layer_case> expand_axes(const std::vector<sweep_axis>& axes, const std::string& where,
                                    const plan_knobs& base);
// The layer scenario's sweep, in layer_axis_names order.
std::vector<layer_case> expand_cases(const layer_scenario& sc);

// The default scenario (DESIGN/issue): GPT-3 175B TP4 with its preset, cdmc {1, 8, 32} x
// order x sm_margin {0, 8, 16, 24, 32}, methods preset and none.
std::string default_scenario_path();

}  // namespace ob
