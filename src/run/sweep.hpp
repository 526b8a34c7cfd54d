#pragma once
// Stages 4 to 6 of the pipeline (run/pipeline.hpp), shared by every subcommand that measures:
// run a list of planned cases on an executor across ranks, reduce each iteration over the ranks
// (the slowest rank sets the step), compute the metrics, and collect the result document.
#include <cstddef>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "model/communicator.hpp"
#include "model/executor.hpp"
#include "model/gpu_spec.hpp"
#include "results/result.hpp"
#include "results/trace.hpp"
#include "run/fault_injection.hpp"
#include "run/sweep_engine.hpp"
#include "spec/sweep_axes.hpp"

namespace ob {

// A sweep ready to run: its cases, how to plan each, and what the result records.
struct sweep_request {
  std::string scenario;  // "layer", "pair"
  std::vector<sweep_case> cases;
  std::function<schedule(const sweep_case&)> plan;
  ordered_json config;  // the resolved configuration for the result document
  measure_options measure;
  std::string source;                 // the scenario file or flags, for error messages
  std::vector<std::string> warnings;  // kept in config.warnings
};

// Measures the variants of one case on this rank's executor and reduces across ranks: each
// iteration's time is the max over ranks, #wrong the sum. Every rank must call it for the same
// cases in the same order (the reductions are collective).
variant_measurements measure_variants(executor& exec, communicator& comm,
                                      const variant_schedules& variants,
                                      const measure_options& opts);

// measure_variants for case `index` of a sweep, with the injected fault of that case applied (a
// test hook, run/fault_injection.hpp): this rank may die before it, or skip its collective (one
// process, simulated) or its cross-rank reduction (under mpirun).
variant_measurements measure_case(executor& exec, communicator& comm,
                                  const variant_schedules& variants, measure_options opts,
                                  const fault_injection& inject, std::size_t index);

// What the caller of run_sweep can plug in, beyond every sweep's hooks (run/sweep_engine.hpp).
// Every hook is optional.
struct sweep_hooks : engine_hooks<case_record> {
  // Cases whose overlapped, compute-only, comm-only and serial timelines go into the trace.
  std::size_t trace_cases = 0;
  // Real backends measure only the CDMC their CUDA context was created with (the driver reads
  // it once). Cases at another CDMC are handed to this hook, which runs them in a fresh process
  // and returns their records; without it such cases are an error.
  std::function<std::vector<case_record>(int cdmc)> run_at_cdmc;
  // A re-executed child measures only the cases at this CDMC (0: all).
  int only_cdmc = 0;
  // A sim executor for measured runs: each case also records the simulator's prediction of the
  // same schedule (report/bringup.hpp).
  executor* predictor = nullptr;
};

struct sweep_result {
  result_doc doc;  // cases in request order
  trace_writer trace;
  // 0, or 3 (runtime) when a case failed verification: its times do not count.
  int exit_code = 0;
  // should_stop's answer when it stopped the sweep early (doc holds the cases finished); 0 when
  // every case ran.
  int stopped = 0;
};

// Identifies a sweep for its journal (run/journal.hpp): equal for the same request on the same
// backend, different when the config, a case id, the backend or a measurement setting
// (iterations, warm-up, graphs, verification) differs.
std::string sweep_fingerprint(const sweep_request& req, const std::string& backend);

// Runs the request's cases on `exec` (see sweep_hooks for CDMC, journaling and stopping).
// Throws config_error naming the source and case when a case cannot be planned, and hang_error
// naming the case when a rank stops answering.
sweep_result run_sweep(const sweep_request& req, executor& exec, communicator& comm,
                       const gpu_spec& gpu, const sweep_hooks& hooks);

// The header of every document a sweep writes (results/document.hpp): tool and env for this
// executor, GPU and world, and the config.
doc_header new_doc_header(const executor& exec, const gpu_spec& gpu, const communicator& comm,
                          ordered_json config);

}  // namespace ob
