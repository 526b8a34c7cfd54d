#pragma once
// The critical path of one timeline (docs/ARCHITECTURE.md §7.1): from the op that ends last,
// back through whichever dependency released each op last, down to the origin. Every instant
// of the timeline lies on exactly one segment: an op executing, or an op waiting before it
// started. A wait is split by what held the op: an event or the host (launch), its hardware
// queue, the SMs, or nothing the intervals can tell.
#include <vector>

#include "model/executor.hpp"
#include "model/ir.hpp"

namespace ob {

struct path_segment {
  int op = 0;
  bool exec = true;  // the op executing; otherwise the op waiting to start
  double start_us = 0, end_us = 0;
  // A wait only, summing to its length: a cross-queue event or the host enqueuing late, a
  // not-ready op ahead in the same hardware queue, no free SM, and what none of these explains.
  double launch_us = 0, queue_us = 0, sm_us = 0, unexplained_us = 0;
};

// Gaps no running op or queue explains count as launch overhead up to this long; longer ones are
// unexplained (a late peer rank, a preempted host thread).
inline constexpr double launch_gap_us = 20.0;

// Segments in time order, the first starting at 0 (the iteration's origin), the last ending at
// the latest end. `intervals` must hold every op of `s` once (else the result is empty). Waits
// use the intervals' enqueue/deps_met/ready times where the executor recorded them (the
// simulator does) and are inferred from the other ops' intervals where it did not, with `cdmc`
// hardware queues (<= 0: the driver's default).
std::vector<path_segment> critical_path(const schedule& s,
                                        const std::vector<op_interval>& intervals, int cdmc);

}  // namespace ob
