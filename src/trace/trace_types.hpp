#pragma once
// What `analyze` keeps of a profile (docs/ANALYZE.md): only GPU activity (kernels, memcpy,
// memset) and the step markers, as compact records, so a trace of millions of events fits in
// bounded memory. Times are integer nanoseconds on the rank's own clock, shifted so that every
// rank of one analysis shares one origin.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "trace/kernel_class.hpp"

namespace ob::trace {

struct gpu_event {
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  std::int64_t stream = 0;
  std::int64_t launch_ns =
      -1;  // communication only: when the CPU's launch call returned; -1 unknown
  // When the CPU call that issued it (kernel launch, memcpy, memset) started: -1 when the profile
  // cannot say, issued_before_trace when it records calls but not this one's.
  std::int64_t issued_ns = -1;
  std::int32_t name_id = 0;    // index into rank_trace::names
  std::int32_t group_id = -1;  // index into rank_trace::groups; -1: no process group known
  std::int32_t device = 0;
  kernel_class cls{};
};

// One training step as the profile marks it: `ProfilerStep#N` (Kineto) or an NVTX range.
struct step_range {
  std::int64_t number = 0;
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
};

// A GPU activity whose issuing call the profile does not hold although it holds calls: the call
// came before the profile's window, so before its first step (HTA and TraceLens leave such
// activity out too).
inline constexpr std::int64_t issued_before_trace = std::numeric_limits<std::int64_t>::min();

struct rank_trace {
  std::string file;
  std::string format;  // "kineto" or "nsys"
  int rank = -1;       // from the profile (Kineto distributedInfo), else assigned in file order
  int world_size = 0;  // 0: the profile does not say
  std::int64_t clock_origin_ns = 0;  // what was added to the file's times to align the ranks
  bool clock_known = true;           // false: an nsys export without its session start time
  std::vector<gpu_event> events;
  std::vector<step_range> steps;
  bool steps_on_cpu = true;  // CPU-side ranges (ProfilerStep, NVTX); false: GPU-side annotations
  std::vector<std::string> names;        // kernel names, interned
  std::vector<std::vector<int>> groups;  // process-group rank lists, interned
};

// The time that places `e` in a step (docs/ANALYZE.md §3): the GPU runs behind the CPU, so a
// kernel belongs to the CPU-side step that issued it; its GPU start where the call is unknown or
// the steps are GPU-side ranges.
inline std::int64_t step_time(const rank_trace& r, const gpu_event& e) {
  return r.steps_on_cpu && e.issued_ns != -1 ? e.issued_ns : e.start_ns;
}

}  // namespace ob::trace
