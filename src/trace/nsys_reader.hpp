#pragma once
// Nsight Systems SQLite exports (`nsys export --type sqlite`, docs/ANALYZE.md §1): kernels with
// their names, memcpy and memset, NVTX step ranges, and the session's start time that aligns
// files taken on different nodes.
#include <string>
#include <vector>

#include "trace/trace_types.hpp"

namespace ob::trace {

// One rank per GPU (deviceId) the export holds, in deviceId order, with ranks not yet numbered
// (rank = -1). Times are shifted by TARGET_INFO_SESSION_START_TIME.utcEpochNs when the table is
// there (clock_origin_ns says by how much). config_error (exit 2) naming the file and the table
// when the file is not SQLite, not an nsys export (no StringIds), or has no kernel table.
// Steps are the NVTX ranges step_marker_number (trace_input.hpp) accepts for `step_marker`.
std::vector<rank_trace> read_nsys(const std::string& path, const std::string& step_marker = "");

}  // namespace ob::trace
