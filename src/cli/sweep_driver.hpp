#pragma once
// Runs a list of cases on the chosen backend and emits the result: shared by `run` and `pair`.
// Owns the CDMC rule (DESIGN §7): a real backend runs only cases at the CDMC its CUDA context
// was created with, so a single-process sweep re-executes itself once per other value.
#include <functional>
#include <string>
#include <vector>

#include "cli/command.hpp"
#include "cli/harness.hpp"
#include "core/scenario.hpp"

namespace ob::cli {

struct sweep_request {
  std::string scenario;  // "layer", "pair"
  std::vector<layer_case> cases;
  std::function<schedule(const layer_case&)> plan;
  ordered_json config;  // resolved configuration for the result document
  measure_options measure;
  std::string source;                 // the scenario file or flags, for error messages
  std::vector<std::string> warnings;  // said on stderr and kept in config.warnings
};

// Returns the process exit code: 0, or 3 when a case failed verification.
int drive_sweep(const sweep_request& req, const common_flags& flags, const gpu_spec& gpu,
                const process_args& args);

}  // namespace ob::cli
