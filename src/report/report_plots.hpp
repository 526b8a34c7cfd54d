#pragma once
// The report's pictures: drawn by scripts/report_plots.py with matplotlib (Debian's
// python3-matplotlib), which reads the result files and prints one line per picture written.
#include <string>
#include <utility>
#include <vector>

namespace ob {

struct figure {
  std::string kind;  // e2e, heatmap, diagnosis, timeline_best, timeline_worst, trend
  std::string file;  // relative to the output folder
  std::string caption;
};

struct plot_outcome {
  std::vector<figure> figures;
  std::string problem;  // why no picture was drawn; empty when the script ran
};

// Runs the script on `result` (and, for the trend, `trend` as label/path pairs in order) into
// `out_dir`. Never throws for a missing interpreter, script or matplotlib: the report is still
// written, without pictures, and `problem` says why.
plot_outcome draw_report_figures(const std::string& out_dir, const std::string& result,
                                 const std::vector<std::pair<std::string, std::string>>& trend);

// Any picture script of scripts/ that prints the same manifest (analyze's analyze_plots.py), run
// with `args`; never throws, as above.
plot_outcome run_plot_script(const std::string& name, const std::vector<std::string>& args);

// scripts/<name>: $OVERLAP_BENCH_SCRIPTS, then beside the binary (../scripts, ../../scripts),
// then the source tree it was built from. "" when none has it.
std::string find_script(const std::string& name);

}  // namespace ob
