#pragma once
// What report.md says for a step document (docs/ARCHITECTURE.md §7.4): the recommendation, where
// each case's step went (the breakdown), why it was not all compute (the diagnosis), and its
// throughput, around the pictures scripts/report_plots.py draws for it.
#include <string>

#include "report/report_doc.hpp"
#include "report/report_plots.hpp"
#include "results/step_result.hpp"

namespace ob {

report_doc build_step_report(const std::string& path, const step_doc& d, const plot_outcome& plots);

}  // namespace ob
