#pragma once
// Runs a sweep request from the command line: makes the communicator and the executor, plugs the
// process-level hooks into core's run_sweep (progress on stderr, a fresh process per other CDMC
// value on single-process real runs), and prints and writes the result.
#include "cli/command.hpp"
#include "cli/harness.hpp"
#include "cli/output_paths.hpp"
#include "run/sweep.hpp"

namespace ob::cli {

// Returns the process exit code: 0, or 3 when a case failed verification. `inputs`: the files the
// command reads (--config, ...), which no output may name.
int drive_sweep(sweep_request req, const common_flags& flags, const gpu_spec& gpu,
                const process_args& args, const std::vector<path_flag>& inputs = {});

}  // namespace ob::cli
