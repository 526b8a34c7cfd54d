#pragma once
// Stage 2 of the pipeline (run/pipeline.hpp): a layer scenario resolved into everything its run
// needs, typed. Every domain rule between a scenario file and a planned case lives here: what
// the `method` axis selects (a preset, a Bridge config resolved as `resolve` does, Transformer
// Engine's defaults), the Bridge config's layout and model shape winning over the scenario's,
// the preset-mismatch check, and when Transformer Engine's launch-ordering event applies.
#include <optional>
#include <string>
#include <vector>

#include "bridge/resolve.hpp"
#include "model/executor.hpp"
#include "model/gpu_spec.hpp"
#include "model/model_spec.hpp"
#include "model/overlap_cfg.hpp"
#include "model/workload.hpp"
#include "spec/scenario.hpp"
#include "spec/sweep_axes.hpp"

namespace ob {

// What each value of the `method` axis runs, per GEMM slot.
struct overlap_per_setting {
  slot_overlap_map preset;      // the preset, a Bridge config's TP overlap, or TE's defaults
  slot_overlap_map te_default;  // Transformer Engine's built-in defaults
  slot_overlap_map none;        // empty: every slot without overlap
  const slot_overlap_map& of(overlap_setting s) const;
};

struct run_spec {
  std::string source;  // the scenario file, for messages
  gpu_spec gpu;
  model_spec model;  // with the scenario's and the Bridge config's overrides applied
  parallel_layout layout;
  layer_workload workload;
  std::optional<bridge_resolution> bridge;  // when the scenario names a Bridge config
  bool tp_overlap = true;                   // false when the Bridge config switches it off
  overlap_per_setting overlap;
  std::vector<sweep_case> cases;  // the sweep, launch ordering decided per case
  measure_options measure;        // the scenario's warm-up, iterations and graphs
  // What the layer model does not capture, or does not match: said on stderr and kept in the
  // result's config.warnings.
  std::vector<std::string> warnings;
  ordered_json config;  // the resolved configuration the result records
};

// Loads the GPU, the model and the overlap source the scenario names and checks that they fit
// together. Bad input throws config_error naming the scenario file and field (exit 2).
run_spec resolve_run(const layer_scenario& sc);

// Stage 3 for one case of the run: the layer's schedule under the case's method and knobs.
schedule plan_case(const run_spec& r, const sweep_case& c);

// Transformer Engine records its launch-ordering event on Hopper with CDMC > 1 (CUDA >= 12.3),
// never without overlap (docs/BRIDGE_RULES.md §6.3).
bool te_launch_ordering_applies(launch_ordering mode, const gpu_spec& gpu, int cdmc,
                                overlap_setting method);

}  // namespace ob
