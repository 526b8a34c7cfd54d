#pragma once
// Nsight Systems SQLite exports (`nsys export --type sqlite`, docs/ANALYZE.md §1): kernels with
// their names, memcpy and memset, NVTX step ranges, and the session's start time that aligns
// files taken on different nodes.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "trace/trace_types.hpp"

namespace ob::trace {

// One rank per GPU (deviceId) the export holds, in deviceId order, with ranks not yet numbered
// (rank = -1). Times are shifted by TARGET_INFO_SESSION_START_TIME.utcEpochNs when the table is
// there (clock_origin_ns says by how much). config_error (exit 2) naming the file and the table
// when the file is not SQLite, not an nsys export (no StringIds), or has no kernel table.
// A communicator this file's process joined, from NCCL's NVTX payloads (docs/ANALYZE.md §4):
// the payload of each `ncclCommInit*`/`ncclCommSplit` range names the communicator ("NCCL
// communicator ID"), its size ("No. of ranks") and this process's rank in it ("Rank").
struct nsys_comm {
  std::uint64_t id = 0;
  int nranks = 0;
  int rank = -1;
};
// Empty when the export has no NVTX payloads (NCCL before its NVTX payloads, or NVTX not traced).
std::vector<nsys_comm> read_nsys_communicators(const std::string& path);

// Communicator -> the world ranks that joined it, from every file's communicators; a file's world
// rank is its rank in the largest communicator it joined.
using comm_groups = std::map<std::uint64_t, std::vector<int>>;
comm_groups communicator_groups(const std::vector<std::vector<nsys_comm>>& per_file);
// -1 when the file joined none.
int world_rank_of(const std::vector<nsys_comm>& comms);

// Steps are the NVTX ranges step_marker_number (trace_input.hpp) accepts for `step_marker`. With
// `groups`, each communication kernel whose launch (CUPTI_ACTIVITY_KIND_RUNTIME, by correlation
// id) lies inside an NCCL NVTX range gets that range's communicator's ranks as its process group,
// and a file of one GPU its world rank.
std::vector<rank_trace> read_nsys(const std::string& path, const std::string& step_marker = "",
                                  const comm_groups* groups = nullptr);

}  // namespace ob::trace
