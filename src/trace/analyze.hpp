#pragma once
// `overlap-bench analyze`: profiles in, one MEASURED analysis out (docs/ANALYZE.md). Each file
// is read and measured before the next is opened, so memory holds one rank's events at a time.
#include <optional>
#include <string>
#include <vector>

#include "base/json_util.hpp"
#include "base/stats.hpp"
#include "trace/trace_metrics.hpp"

namespace ob::trace {

inline constexpr const char* analysis_schema_v1 = "overlap-bench/analysis/v1";

struct analyze_request {
  std::vector<std::string> inputs;  // files, or folders of them
  std::string layout;               // --layout text; "" for none
  int last_steps = 0;               // --steps K
  std::string step_marker;          // --step-marker NAME; "" for the built-in markers
  bool timelines = false;           // keep the first max_timeline_ranks ranks' timelines
};

inline constexpr std::size_t max_timeline_ranks = 16;

struct analysis_summary {
  stats step_ms;          // step spans over every rank and step (rank spans without steps)
  stats exposed_comm_ms;  // the same samples' exposed communication
  int slowest_rank = -1;  // the rank with the largest median step (or span)
  std::string slowest_file;
  double slowest_ms = 0;
};

struct analysis {
  std::vector<std::string> files;
  std::optional<parallel_layout> layout;  // resolved
  int last_steps = 0;
  std::vector<rank_metrics> ranks;  // by rank number
  analysis_summary summary;
};

// The trace files `inputs` name: a folder gives its *.json, *.json.gz and *.sqlite files in name
// order. config_error (exit 2) for a missing path or a folder without traces.
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs);

// Reads, numbers and measures every rank. Ranks come from Kineto's distributedInfo, else in input
// order; two files claiming one rank, or several nsys files of which one has no session start
// time (its clock cannot be aligned with the others), are config_error (exit 2).
analysis analyze_traces(const analyze_request& req);

ordered_json analysis_to_json(const analysis& a);
// The kept timelines (rank_timeline), for the report's kernel-level strip: times in ms from
// each window's first activity, labelled MEASURED with the files.
ordered_json timelines_to_json(const analysis& a);
// The table: ≤ 200 columns, labelled MEASURED with the files it comes from.
std::string format_analysis(const analysis& a);

// report.md of `analyze --report DIR`: the table, the pictures (file, caption) the plot script
// drew, and `problem` when it drew none.
std::string analysis_markdown(const analysis& a,
                              const std::vector<std::pair<std::string, std::string>>& figures,
                              const std::string& problem);

}  // namespace ob::trace
