#pragma once
// The training step through the pipeline (run/pipeline.hpp, docs/ARCHITECTURE.md §9): a step
// scenario resolved into cases (stage 2), each planned as a multi-stage program (stage 3),
// measured (stage 4), and turned into the step's breakdown and throughput (stages 5 and 6).
#include <functional>
#include <string>
#include <vector>

#include "model/cluster.hpp"
#include "model/communicator.hpp"
#include "model/executor.hpp"
#include "model/gpu_spec.hpp"
#include "model/memory.hpp"
#include "model/model_spec.hpp"
#include "plan/step_plan.hpp"
#include "results/step_result.hpp"
#include "run/fault_injection.hpp"
#include "run/sweep_engine.hpp"
#include "spec/step_config.hpp"

namespace ob {

// One step case with everything resolved.
struct step_run_case {
  step_case c;  // cfg checked: dp, micro-batches and layers filled in
  model_spec model;
  cluster_spec cluster;
  slot_overlap_map tp_methods;  // empty without TP overlap
  std::string tp_source;        // the preset's name, "te_default" or "none"
  int cdmc = cdmc_default;
  std::string cdmc_source;            // "swept" or what set it
  ordered_json config;                // the record's config
  memory_estimate memory;             // the memory model's estimate (plan/memory_model.hpp)
  std::vector<std::string> warnings;  // what resolving the case noticed; the record carries them
};

struct step_spec {
  std::string source;  // the scenario file, or "step flags"
  gpu_spec gpu;
  std::vector<step_run_case> cases;
  measure_options measure;
  std::vector<std::string> warnings;
  ordered_json config;  // the document's config
  // Cases that do not fit the GPU's memory are predicted only when asked (--allow-oom); else
  // they are listed in the document's "oom" and never run (docs/MEMORY.md).
  bool allow_oom = false;
};

// Stage 2: loads the model, GPU and cluster, checks every case's layout (config_error naming
// the flag or field), and decides the TP overlap, the CDMC and the launch ordering per case.
step_spec resolve_step(const step_scenario& sc);

// Stage 2 for cases made elsewhere (step --search): as resolve_step, with `cases` in place of
// the scenario's axes; a case check_step refuses is left out and counted in `refused`.
step_spec resolve_step_cases(const step_scenario& sc, const std::vector<step_case>& cases,
                             std::size_t& refused);

// Stage 3: the case's program.
step_plan plan_step_case(const step_spec& spec, const step_run_case& c);

// What the caller of run_step_sweep can plug in, beyond every sweep's hooks
// (run/sweep_engine.hpp). The injected fault is `die` only: a step has no simulated rank to keep
// out of a collective (the CLI refuses skip_collective).
struct step_hooks : engine_hooks<step_record> {
  bool trace = false;  // keep the first case's overlapped timeline, every stage a process
};

struct step_sweep_result {
  step_doc doc;     // the cases finished (this run's and hooks.finished), in the spec's order
  json trace;       // Chrome/Perfetto JSON of the first case run here, when asked
  int stopped = 0;  // should_stop's answer when it stopped the sweep early, else 0
};

// Identifies a step sweep for its journal (run/journal.hpp): the document's config, every
// case's id and resolved config, the model's dimensions, the backend and the measurement
// settings.
std::string step_fingerprint(const step_spec& spec, const std::string& backend);

// Stages 4 to 6 for one case on this process alone (a deterministic executor, step --search): the
// overlapped variant only, so compute_only_ms stays null. Safe to call from several threads,
// each with its own executor.
step_record predict_step_case(const step_spec& spec, const step_run_case& rc, executor& exec);

// The case's compute-only variant (every communication op dropped): the time its critical stage
// computes (ms), the optimizer step not counted.
double compute_only_busy_ms(const step_spec& spec, const step_run_case& rc, executor& exec);

// Stages 4 to 6 for every case not in hooks.finished: the overlapped and compute-only variants
// of each program on `exec`, reduced across ranks, attributed and summarised.
step_sweep_result run_step_sweep(const step_spec& spec, executor& exec, communicator& comm,
                                 const step_hooks& hooks);

}  // namespace ob
