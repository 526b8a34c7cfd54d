#pragma once
// `step --search` (docs/ARCHITECTURE.md §9.6): which layout, recompute and overlap settings for a
// model on N GPUs. The model, GPU, cluster, GPU count, global batch, sequence and dtype stay
// fixed; the search enumerates tp, pp, vp, cp, mbs and recompute, refuses what check_step
// refuses, prunes what does not fit (docs/MEMORY.md) or is dominated (a heavier recompute of a
// layout that fits without it), orders the rest by a lower bound on the step time and simulates
// them until the bound passes the best step found; then it tries the overlap settings one at a
// time on the best layout.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/communicator.hpp"
#include "model/executor.hpp"
#include "model/gpu_spec.hpp"
#include "model/model_spec.hpp"
#include "results/step_result.hpp"
#include "run/step_run.hpp"
#include "spec/step_config.hpp"

namespace ob {

struct search_options {
  int top = 5;          // cases the document and the table keep, best first
  double budget_s = 0;  // stop simulating after this many seconds; 0: no limit
  int threads = 0;      // simulating threads per process; 0: every core
  // One executor per thread for the scenario's GPU; the search needs a deterministic one (the
  // sim).
  std::function<std::unique_ptr<executor>(const gpu_spec&)> make_executor;
  // After each batch: the cases simulated so far, of how many may be, and the best so far.
  std::function<void(std::size_t done, std::size_t total, const std::string& best)> progress;
};

struct search_counts {
  std::size_t candidates = 0;  // layouts enumerated
  std::size_t refused = 0;     // invalid for the model or the batch (check_step)
  std::size_t pruned_oom = 0;
  std::size_t pruned_dominated = 0;
  std::size_t pruned_bound = 0;  // bound at or above the best step found: cannot win
  std::size_t skipped_budget = 0;
  std::size_t simulated = 0;  // layouts
  std::size_t variants = 0;   // overlap settings tried on the best layout
  double seconds = 0;
  std::string stopped_by;  // "bound" (the best is exact), "exhausted", or "budget"
};

// The searched axes: none may be given with --search.
inline constexpr std::string_view searched_axes[] = {"tp", "pp", "vp", "cp", "mbs", "recompute"};

// Every axis of `sc` must hold one value, none a searched axis, and gbs must be given: a
// config_error (exit 2) naming the flag otherwise. Under MPI every rank simulates its share of
// each batch, and every rank ends with the same answer. The document's cases are the `top` best,
// fastest first; doc.search holds the counts and the comparison of the two best.
step_doc search_step(const step_scenario& sc, const search_options& o, communicator& comm);

// Every layout the search considers, before check_step: tp, cp, pp, vp, mbs and recompute
// over the scenario's fixed settings.
std::vector<step_case> search_candidates(const step_scenario& sc);

// Each case's lower bound on its step (ms), for the cases `which` names (0 for the rest): the
// peak-FLOP bound below, or better, its most loaded stage's layers at the simulated compute-only
// time of one layer of its shape, for every micro-batch, stretched by the bubble.
std::vector<double> search_bounds(const step_scenario& sc, const step_spec& spec,
                                  const std::vector<std::size_t>& which, const search_options& o);

// A lower bound on the step time (ms) of a resolved layout: the model's FLOPs (with the
// recomputed forward passes) at the GPU's dense peak on every GPU, stretched by 1F1B's bubble,
// (p - 1) / (m v). No simulated step is faster.
double step_time_bound_ms(const model_spec& m, const gpu_spec& gpu, const step_config& cfg);

}  // namespace ob
