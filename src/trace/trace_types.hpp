#pragma once
// What `analyze` keeps of a profile (docs/ANALYZE.md): only GPU activity (kernels, memcpy,
// memset) and the step markers, as compact records, so a trace of millions of events fits in
// bounded memory. Times are integer nanoseconds on the rank's own clock, shifted so that every
// rank of one analysis shares one origin.
#include <cstdint>
#include <string>
#include <vector>

#include "trace/kernel_class.hpp"

namespace ob::trace {

struct gpu_event {
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  std::int64_t stream = 0;
  std::int64_t launch_ns =
      -1;                    // communication only: when the CPU's launch call returned; -1 unknown
  std::int32_t name_id = 0;  // index into rank_trace::names
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

struct rank_trace {
  std::string file;
  std::string format;  // "kineto" or "nsys"
  int rank = -1;       // from the profile (Kineto distributedInfo), else assigned in file order
  int world_size = 0;  // 0: the profile does not say
  std::int64_t clock_origin_ns = 0;  // what was added to the file's times to align the ranks
  bool clock_known = true;           // false: an nsys export without its session start time
  std::vector<gpu_event> events;
  std::vector<step_range> steps;
  std::vector<std::string> names;        // kernel names, interned
  std::vector<std::vector<int>> groups;  // process-group rank lists, interned
};

}  // namespace ob::trace
