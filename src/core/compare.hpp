#pragma once
// `compare BASE NEW` (docs/ARCHITECTURE.md §7): per case SAME / FASTER / SLOWER, noise-aware. A
// change counts only when it exceeds both the threshold and the measured spread, so CI does not
// fail on noise and does not pass a change that is merely hidden under a loose threshold.
#include <string>
#include <vector>

#include "core/result.hpp"

namespace ob {

struct compare_row {
  std::string id;
  // SAME | FASTER | SLOWER: overlapped median moved by less / more than the bar.
  // MISSING: in BASE only. NEW: in NEW only. WRONG: NEW's case failed verification (#wrong > 0).
  std::string verdict;
  double base_ms = 0, new_ms = 0;  // overlapped_ms medians (0 for the absent side)
  double delta_pct = 0;            // (new − base) / base × 100
  // Combined relative spread: half the p10..p90 range of each side over its median, summed, in %.
  // The medians differ by more than this only when the two p10..p90 bands barely overlap.
  double noise_pct = 0;
  double base_exposed_ms = 0, new_exposed_ms = 0;  // exposed_comm_ms, shown for context
  bool in_base = true, in_new = true;
};

struct compare_outcome {
  double threshold_pct = 0;
  std::vector<compare_row> rows;  // BASE order, then NEW-only cases
  // Comparisons that may not mean what they seem: simulated vs measured, another backend or
  // GPU, changed NCCL_*/NVTE_*/CDMC variables.
  std::vector<std::string> warnings;
  bool has_regression() const;  // same as the free function
};

// A SLOWER or WRONG verdict is a regression (exit 1). MISSING is reported, not a regression:
// a case dropped on purpose must not fail CI, and a crashed run fails on its own exit code.
bool has_regression(const compare_outcome& o);

// The bar a change must clear: max(threshold, noise).
compare_outcome compare_results(const result_doc& base, const result_doc& neu,
                                double threshold_pct);

// Warnings first, then one aligned row per case and a summary line.
std::string format_compare(const compare_outcome& o);

}  // namespace ob
