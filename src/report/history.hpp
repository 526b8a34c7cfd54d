#pragma once
// Regression history (docs/ARCHITECTURE.md §7.4): results/history/ holds result files by date,
// named YYYY-MM-DD_<backend>_<gpu>.json (scripts/run.sh adds one per day and backend); `report
// --trend` reads them all, oldest first, and draws how the answers moved.
#include <string>
#include <vector>

#include "results/result.hpp"

namespace ob {

// The *.json files of `dir`, sorted by name (the date comes first); empty when it is missing.
std::vector<std::string> history_files(const std::string& dir);

// One result on the trend: its label (the file name without .json) and what it answered.
struct trend_point {
  std::string label;
  std::string path;
  result_doc doc;
  std::optional<recommendation> rec;  // the document's, or computed for older files
};

// Loads `paths` in order (a bad file is a config_error naming it, exit 2).
std::vector<trend_point> load_trend(const std::vector<std::string>& paths);

// Per point: the best case, the default case, the best `none` case, and against the previous
// point compare's verdict counts ("2 SLOWER, 29 SAME").
// The verdicts say "(model sim-v2 → sim-v2.1)" where two simulated neighbours come from
// different model versions (env.sim_model).
std::vector<std::vector<std::string>> trend_rows(const std::vector<trend_point>& points);
// One warning per pair of neighbours whose simulator model differs, so a model change does not
// read as a regression or a gain.
std::vector<std::string> trend_warnings(const std::vector<trend_point>& points);
std::vector<std::string> trend_header();

}  // namespace ob
