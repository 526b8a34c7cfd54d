#pragma once
// `compare A.json B.json` on two analysis documents (docs/ANALYZE.md §5): regression tracking on
// real runs. Each part is a mean per rank, so runs of different sizes compare.
#include <string>
#include <vector>

#include "base/json_util.hpp"

namespace ob::trace {

struct analysis_delta {
  std::string part;  // "exposed_comm", "step_median", "dim tp", "kind all_reduce", ...
  double base_ms = 0, new_ms = 0;
  bool watched = false;     // a part whose growth is a regression (exposed time, the step)
  bool regression = false;  // watched, and grew by more than the threshold
};

struct analysis_comparison {
  std::vector<analysis_delta> rows;
  bool regression() const;
};

// config_error (exit 2) naming the file and field when either is not a readable analysis/v1
// document. A watched part regresses when it grows by more than `threshold_pct` percent of the
// base and by at least a microsecond.
analysis_comparison compare_analyses(const ordered_json& base, const std::string& base_file,
                                     const ordered_json& neu, const std::string& new_file,
                                     double threshold_pct);

std::string format_analysis_comparison(const analysis_comparison& c, const std::string& base_file,
                                       const std::string& new_file);

}  // namespace ob::trace
