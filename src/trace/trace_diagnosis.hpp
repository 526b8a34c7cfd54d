#pragma once
// Why a rank's communication was exposed, in the vocabulary of the simulated cases
// (docs/ANALYZE.md §6): each exposed nanosecond is given to the communication kernel that was
// running then (the earliest started, when several were) and that kernel's cause, so the causes
// sum to exposed_comm_ms.
#include <map>
#include <string>
#include <vector>

#include "trace/trace_types.hpp"

namespace ob::trace {

struct exposure_causes {
  std::map<std::string, double> ms;  // cause -> exposed ms
  std::string main_cause;            // the largest; "" when nothing is exposed
};

// `dims`: the dimension of each of r.groups ("unknown" without a layout). A kernel's cause:
// serialized_same_stream when its stream also runs compute kernels; else, when it started over
// 10 µs after its launch call returned, queue_blocked if the kernel before it on its stream was
// still running then, sm_starved if compute kernels ran through at least half of that wait; else,
// when it starts after the last compute kernel of its step, late_bucket for data-parallel
// communication and tail_not_overlapped for the rest; else bubble for pipeline sends and receives
// (kind send_recv or dimension pp), which wait on another stage; else other.
exposure_causes diagnose_exposure(const rank_trace& r, const std::vector<const gpu_event*>& evs,
                                  const std::vector<std::string>& dims);

}  // namespace ob::trace
