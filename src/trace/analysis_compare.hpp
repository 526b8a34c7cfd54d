#pragma once
// `compare A.json B.json` on two analysis documents (docs/ANALYZE.md §5): regression tracking on
// real runs. Each part is a mean per rank, so runs of different sizes compare.
#include <string>
#include <vector>

#include "base/json_util.hpp"
#include "trace/analyze.hpp"

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

// --predict: a measured part per step beside the step model's figure for it.
struct model_part {
  std::string part;  // "step", "compute", "tp exposed", "cp exposed", "dp exposed", ...
  double measured_ms = 0, predicted_ms = 0;
};

// The measured side, per step and mean over ranks (a rank without marked steps counts as one
// step): the median step, compute, exposed communication per dimension (a group over cp and dp
// counts as dp, Megatron's gradient group) and the bubble (docs/ANALYZE.md §6).
std::vector<model_part> measured_step_parts(const analysis& a);
// The table, labelled MEASURED and PREDICTED, with the deviation from the prediction in %.
std::string format_prediction(const std::vector<model_part>& parts, const std::string& model_label);
ordered_json prediction_to_json(const std::vector<model_part>& parts, const std::string& model,
                                const std::string& gpu);

}  // namespace ob::trace
