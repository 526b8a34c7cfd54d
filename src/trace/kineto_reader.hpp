#pragma once
// The PyTorch profiler's (Kineto's) Chrome-trace JSON, plain or gzip, read with a SAX parser so
// that memory grows with the GPU events kept, never with the file (docs/ANALYZE.md §1).
#include <string>

#include "trace/trace_types.hpp"

namespace ob::trace {

// Keeps complete events ("ph": "X") of category kernel, gpu_memcpy and gpu_memset, and
// `ProfilerStep#N` ranges; the rank from "distributedInfo". config_error (exit 2) naming the file
// when it is not JSON, has no "traceEvents", is a corrupt gzip, or holds no GPU activity.
// Steps: the ranges step_marker_number (trace_input.hpp) accepts for `step_marker`.
rank_trace read_kineto(const std::string& path, const std::string& step_marker = "");

// Microseconds as Kineto writes them ("1700000000123.456") to integer nanoseconds, exactly: a
// double holds epoch microseconds only to a quarter of a microsecond.
std::int64_t microseconds_text_to_ns(const std::string& text);

}  // namespace ob::trace
