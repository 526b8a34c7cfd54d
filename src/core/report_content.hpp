#pragma once
// What report.md says, section by section (docs/ARCHITECTURE.md §7.4), from the subject result,
// the trend and the pictures drawn.
#include <vector>

#include "core/history.hpp"
#include "core/report_doc.hpp"
#include "core/report_plots.hpp"

namespace ob {

report_doc build_report(const trend_point& subject, const std::vector<trend_point>& trend,
                        const plot_outcome& plots);

}  // namespace ob
