#pragma once
// `compare BASE NEW` (docs/ARCHITECTURE.md §7): per case SAME / FASTER / SLOWER, noise-aware. A
// change counts only when it exceeds both the threshold and the measured spread, so CI does not
// fail on noise and does not pass a change that is merely hidden under a loose threshold. The
// rule reads a document through compare_side, so layer/pair results (the overlapped median) and
// step documents (the step median, report/step_compare.hpp) are judged alike.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "results/result.hpp"

namespace ob {

struct compare_row {
  std::string id;  // as printed: the case's id, or what matched it when BASE and NEW ids differ
  std::string base_id, new_id;  // the case's id on each side ("" for the absent side)
  // SAME | FASTER | SLOWER: the judged median moved by less / more than the bar.
  // MISSING: in BASE only. NEW: in NEW only. WRONG: NEW's case failed verification (#wrong > 0).
  std::string verdict;
  double base_ms = 0, new_ms = 0;  // judged medians (0 for the absent side)
  double delta_pct = 0;            // (new − base) / base × 100
  // Combined relative spread: half the p10..p90 range of each side over its median, summed, in %.
  // The medians differ by more than this only when the two p10..p90 bands barely overlap.
  double noise_pct = 0;
  double base_exposed_ms = 0, new_exposed_ms = 0;  // result documents: exposed_comm_ms, context
  double bar_pct = 0;  // max(threshold, noise): what a change must exceed
  bool in_base = true, in_new = true;
};

struct compare_outcome {
  double threshold_pct = 0;
  std::vector<compare_row> rows;  // BASE order, then NEW-only cases
  // Comparisons that may not mean what they seem: simulated vs measured, another backend or
  // GPU, changed NCCL_*/NVTE_*/CDMC variables.
  std::vector<std::string> warnings;
  // How the rule applies here: simulated documents have one deterministic iteration per case
  // (n = 1, cv 0), so their noise is 0 and the threshold alone decides.
  std::vector<std::string> notes;
  bool has_regression() const;  // same as the free function
  std::size_t matched() const;  // cases in both documents: 0 means nothing was compared
};

// A SLOWER or WRONG verdict is a regression (exit 1). MISSING is reported, not a regression:
// a case dropped on purpose must not fail CI, and a crashed run fails on its own exit code.
bool has_regression(const compare_outcome& o);

// What compare reads of a document: its env (backend, GPU and variables, for the warnings),
// whether it is simulated, and per case the id, the judged time, #wrong and the key cases are
// matched on (a result's id; a step's varying params, report/step_compare.hpp). Pointers point into
// the document.
struct compare_side {
  const ordered_json* env = nullptr;
  bool simulated = false;
  struct entry {
    const std::string* id;
    const stats* time;
    std::int64_t wrong;
    std::string key;
  };
  std::vector<entry> cases;
};

// The bar a change must clear: max(threshold, noise).
compare_outcome compare_sides(const compare_side& base, const compare_side& neu,
                              double threshold_pct);
// Result documents: judged on overlapped_ms, exposed_comm_ms shown beside it.
compare_outcome compare_results(const result_doc& base, const result_doc& neu,
                                double threshold_pct);

// A warning for each side a stopped sweep wrote ("complete": false): its missing cases are not
// cases dropped from the sweep. Used by compare_results and compare_steps.
void partial_warnings(const std::optional<std::size_t>& base_planned, std::size_t base_cases,
                      const std::optional<std::size_t>& new_planned, std::size_t new_cases,
                      std::vector<std::string>& out);

// Warnings and notes first, then one aligned row per case and a summary line.
std::string format_compare(const compare_outcome& o);

// The pieces every compare printout shares. "warning: ..." and "note: ..." lines; a table with
// its columns aligned (the first `left` left-aligned, the rest right-aligned); and the closing
// lines: the threshold, `times` (what the times are), the verdict counts and REGRESSION or not.
std::string compare_preamble(const compare_outcome& o);
std::string aligned_table(const std::vector<std::string>& header,
                          const std::vector<std::vector<std::string>>& rows, std::size_t left);
std::string compare_summary(const compare_outcome& o, const std::string& times);
// "+1.2%", "-0.4%", "+inf%".
std::string signed_pct_text(double v);

}  // namespace ob
