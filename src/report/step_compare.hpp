#pragma once
// compare and --expect on training steps (docs/ARCHITECTURE.md §7, §7.3): the rule of
// report/compare.hpp judged on each case's step median, with where the step moved: the change of
// every breakdown part, marked when it exceeds the case's bar as a share of the base step.
#include <string>

#include "report/bringup.hpp"
#include "report/compare.hpp"
#include "results/step_result.hpp"

namespace ob {

compare_outcome compare_steps(const step_doc& base, const step_doc& neu, double threshold_pct);

// Warnings and notes, one row per case (step medians, delta, noise, then new − base per
// breakdown part in ms, `*` where it exceeds the bar) and the summary.
std::string format_step_compare(const compare_outcome& o, const step_doc& base,
                                const step_doc& neu);

// --expect on a step run: compare's rule per case on the step median; each case outside says
// which breakdown parts moved. No case in common is a config_error (exit 2).
expect_outcome check_step_expectation(const step_doc& baseline, const step_doc& run,
                                      double tolerance_pct, const std::string& baseline_path);

}  // namespace ob
