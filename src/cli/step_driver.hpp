#pragma once
// Runs a step scenario from the command line (`step`, or `run --config` on a step scenario):
// makes the communicator and the executor, runs core's step sweep, prints and writes.
#include "cli/command.hpp"
#include "cli/harness.hpp"
#include "cli/output_paths.hpp"
#include "spec/step_config.hpp"

namespace ob::cli {

// `inputs`: the files the command reads (--config, --model, ...), which no output may name.
int drive_step(const step_scenario& sc, const common_flags& flags, const process_args& args,
               const std::vector<path_flag>& inputs = {});

// step --search (run/step_search.hpp): --top cases kept, --budget-s seconds at most (0: none).
struct search_flags {
  bool on = false;
  int top = 5;
  double budget_s = 0;
};
int drive_search(const step_scenario& sc, const common_flags& flags, const search_flags& search,
                 const process_args& args, const std::vector<path_flag>& inputs);

}  // namespace ob::cli
