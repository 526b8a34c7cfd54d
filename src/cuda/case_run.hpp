#pragma once
// One case on one rank, measured as docs/ARCHITECTURE.md §6 says: the lowering bound to device
// resources, warm-up and timed rounds of every measured variant interleaved, one instrumented
// iteration for the op intervals, and the verification checks after it. Streams, buffers,
// events and graphs live exactly as long as the case.
#include <array>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cuda/abort_signal.hpp"
#include "cuda/action_launch.hpp"
#include "cuda/case_resources.hpp"
#include "cuda/lowering.hpp"
#include "cuda/rank_engine.hpp"
#include "cuda/rank_wait.hpp"
#include "cuda/watchdog.hpp"
#include "model/executor.hpp"

namespace ob::cuda {

// One measured variant as it runs: its actions bound, its streams and events, its graph when
// graphs are on.
struct bound_variant {
  const lowered_variant* low = nullptr;
  const stream_set* set = nullptr;
  variant_events* ev = nullptr;
  std::vector<bound_action> actions;
  graph_exec_handle graph;
  std::string name() const { return std::string(to_string(low->v)); }
};

// An SM clock sample taken when a stream reaches it (a host function on the stream), not when
// the host enqueues it: the host runs ahead of the GPU by many rounds.
struct stream_clock_probe {
  const nvml_telemetry* nvml = nullptr;
  std::string pci_bus_id;
  std::optional<unsigned> mhz;
};

class case_run {
 public:
  // `sync` (may be empty): called before the timed rounds and before the instrumented iteration
  // (a step's ranks start them together).
  case_run(rank_engine& engine, const case_lowering& low, const measure_options& m,
           const std::string* world_id, abort_signal& abort, std::function<void()> sync = {});
  // Sets up, measures and verifies; fills the measured variants of `out` and adds its notes.
  void run(rank_result& out);

 private:
  error_context ctx(const std::string& op = {}) const { return e_.context(op); }
  void bind();
  // Registers every buffer the lowering put in a symmetric window, in lowering order.
  void register_windows();

  // case_enqueue.cpp: one iteration of a variant, its graph, and what a stuck one waits on.
  void enqueue_body(const bound_variant& p, bool instrument);
  void enqueue_action(const bound_variant& p, const bound_action& b, bool instrument);
  void capture_graphs();
  void capture(bound_variant& p);
  std::string describe_stuck(const bound_variant& p, int round) const;

  // case_measure.cpp: timed rounds, the instrumented iteration, verification.
  int rounds() const { return m_.warmup + m_.iters; }
  using plan_span = std::span<const bound_variant>;
  void enqueue_clock_probe(stream_clock_probe& probe);
  void enqueue_rounds(plan_span plans);
  void wait_rounds(plan_span plans);
  void collect_round_times(plan_span plans, rank_result& out) const;
  void measure_rounds(plan_span plans, rank_result& out);
  void clock_warnings(std::vector<std::string>& out) const;
  void poison_outputs(const bound_variant& p);
  void launch_checks(const bound_variant& p);
  void collect_instrumented(rank_result& out) const;
  void timed_rounds(rank_result& out);
  void instrumented_pass(rank_result& out);
  // A step's ranks (sync_ set): every rank's GPU idle, then all pass the barrier together.
  void align_ranks(const std::string& before);

  rank_engine& e_;
  const case_lowering& low_;
  const measure_options& m_;
  const std::string* world_id_;
  abort_signal& abort_;
  std::function<void()> sync_;
  // Declared first among the owned resources so it outlives them: if freeing them blocks on a
  // wedged GPU, the watchdog still reports the hang and exits.
  watchdog dog_;
  rank_waiter wait_;
  action_launcher launcher_;
  case_resources res_;
  std::vector<bound_variant> plans_;  // the measured variants, in variant order
  // Symmetric windows over res_'s buffers: declared after res_, so deregistered before it frees.
  std::vector<nccl_window> windows_;
  // At the start and the end of the timed rounds; written by the stream's host functions.
  std::array<stream_clock_probe, 2> clocks_;
};

}  // namespace ob::cuda
