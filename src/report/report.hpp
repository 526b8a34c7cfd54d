#pragma once
// `overlap-bench report` (docs/ARCHITECTURE.md §7.4): a result turned into answers a reader can
// act on: report.md (and, on request, one self-contained report.html) with the recommendation,
// end-to-end time per method, CDMC × SM margin heatmaps, the diagnosis per case, timelines of
// the best and worst case, the simulator's prediction beside measured cases, and a trend across
// several results. Pictures come from scripts/report_plots.py (report/report_plots.hpp).
#include <string>
#include <vector>

namespace ob {

struct report_request {
  // The first is the report's subject; the others are earlier results, oldest first, for the
  // trend (the subject comes last on it).
  std::vector<std::string> results;
  std::string out_dir;
  bool html = false;
  bool trend = false;  // put every result file of history_dir first on the trend
  std::string history_dir = "results/history";
};

struct report_outcome {
  std::vector<std::string> written;  // paths
  std::vector<std::string> notes;    // what the report could not do (no matplotlib, ...)
};

// Throws config_error for unreadable results or an unusable folder (exit 2).
report_outcome write_report(const report_request& req);

}  // namespace ob
