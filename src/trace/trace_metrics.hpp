#pragma once
// What one rank's profile says (docs/ANALYZE.md §3): span, compute, communication, exposed
// communication and overlap, per collective kind, per parallel dimension and per step.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trace/intervals.hpp"
#include "trace/layout.hpp"
#include "trace/trace_diagnosis.hpp"
#include "trace/trace_types.hpp"

namespace ob::trace {

struct part_metrics {
  double ms = 0;          // union of this part's kernels (per GPU, summed over GPUs)
  double exposed_ms = 0;  // of which no compute kernel on the same GPU runs
  long long kernels = 0;
};

struct totals {
  double span_ms = 0;  // first start to last end of any GPU activity
  double compute_ms = 0, comm_ms = 0, memory_ms = 0, exposed_comm_ms = 0;
  double overlap_pct = 0;  // 100 · (comm − exposed) / comm; 0 without communication
  long long kernels = 0;
};

struct step_metrics {
  long long number = 0;
  totals t;
};

// One GPU's busy intervals over one step, for the report's kernel-level strip
// (docs/ANALYZE.md §5): the rank's median step (by span; its whole activity without steps), on
// the lowest-numbered GPU of that step, in ns from its first activity.
struct rank_timeline {
  long long step = -1;  // -1: no step marked
  int device = 0;
  std::int64_t origin_ns = 0;
  std::vector<interval> compute, comm, exposed;  // merged; exposed = comm less compute
  bool truncated = false;                        // each set keeps its first max_timeline_intervals
};

inline constexpr std::size_t max_timeline_intervals = 5000;

struct rank_metrics {
  int rank = 0;
  std::string file, format;
  totals t;
  std::map<std::string, part_metrics> by_kind;  // communication kinds
  std::map<std::string, part_metrics> by_dim;   // only with a layout
  std::map<std::string, part_metrics> compute_by_kind;
  std::vector<step_metrics> steps;
  std::map<std::string, long long> unknown_kernels;  // name -> count
  exposure_causes causes;                            // why exposed_comm_ms was exposed
  std::optional<rank_timeline> timeline;             // only when measure_options::timeline
};

struct measure_options {
  std::optional<parallel_layout> layout;  // resolved; none: no per-dimension split
  int last_steps = 0;                     // 0: every step and every event
  bool timeline = false;                  // also keep rank_metrics::timeline
};

// Steps: each GPU activity belongs to the last step that started at or before its step_time (the
// CPU call that issued it, where the profile holds it: the GPU runs behind the CPU's
// ProfilerStep range, so a step's kernels may start after the next range began).
rank_metrics measure_rank(const rank_trace& r, const measure_options& opt);

}  // namespace ob::trace
