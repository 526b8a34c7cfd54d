#pragma once
// Bring-up checks (docs/ARCHITECTURE.md §7.3): does a new node, driver or NCCL build behave as it
// should? Each measured case carries the simulator's prediction for the same schedule and how
// far the measurement is from it; `--expect BASELINE.json` turns a run into pass or fail against
// a known-good result and says, per case outside the tolerance, which side moved.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "analysis/metrics.hpp"
#include "model/executor.hpp"
#include "report/compare.hpp"
#include "results/prediction.hpp"
#include "results/result.hpp"

namespace ob {

// Simulates the case's variants on `sim` (a sim executor: deterministic, one iteration each)
// and compares with what was measured.
prediction predict_case(executor& sim, const variant_schedules& v, const measure_options& o,
                        const case_metrics& measured);

// One case outside the tolerance.
struct expect_row {
  std::string id;
  std::string verdict;  // SLOWER, FASTER or WRONG (compare's words)
  double base_ms = 0, run_ms = 0, delta_pct = 0;
  std::optional<double> compute_delta_pct, comm_delta_pct;
  std::string hint;  // which side moved and what that usually means
};

struct expect_outcome {
  double tolerance_pct = 0;
  std::size_t matched = 0;          // cases in both
  std::size_t not_in_baseline = 0;  // run cases the baseline lacks (not judged)
  std::size_t not_run = 0;          // baseline cases this run did not have (not judged)
  std::vector<expect_row> outside;
  std::vector<std::string> warnings;  // compare's: simulated vs measured, other GPU, ...
  bool passed() const { return outside.empty(); }
};

// Judges each case in both on its overlapped median with compare's rule (beyond max(tolerance,
// measured spread), either way). No case in common is a config_error (exit 2).
expect_outcome check_expectation(const result_doc& baseline, const result_doc& run,
                                 double tolerance_pct, const std::string& baseline_path);

// The same judgement of any compare outcome (a step document's too, report/step_compare.hpp):
// `explain` fills each case outside with its hint, given its compare row (the ids on each side
// and the bar it crossed).
expect_outcome expectation_of(const compare_outcome& c, double tolerance_pct,
                              const std::string& baseline_path,
                              const std::function<void(expect_row&, const compare_row&)>& explain);

// Warnings, the cases outside with their hints, and a PASS or FAIL line.
std::string format_expectation(const expect_outcome& o, const std::string& baseline_path);

}  // namespace ob
