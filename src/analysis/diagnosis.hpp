#pragma once
// Why a case exposed its communication (docs/ARCHITECTURE.md §7.1). The exposed time,
// overlapped − compute-only, is split into causes from one fixed vocabulary by walking the
// overlapped timeline's critical path and comparing each op on it with the compute-only,
// compute-with-margin and comm-only variants. It is a function of a schedule and its intervals
// only, so layer cases, microbenchmarks and training steps share it, and it works on the
// simulator's timelines (which say when each op was ready) and on measured ones (which do not).
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/enum_names.hpp"
#include "base/json_util.hpp"
#include "model/executor.hpp"

namespace ob {

enum class exposure_cause {
  queue_blocked,           // waited behind a not-ready op in its hardware queue (CDMC)
  sm_starved,              // ready, but the SMs were held (by a persistent GEMM)
  contention_slowdown,     // ran slower overlapped than alone: interference, SMs given up
  chunking_cost,           // a chunked GEMM waited between its chunks for their communication
  tail_not_overlapped,     // communication outlasted the compute beside it
  bubble,                  // waited for another pipeline stage (pp send/recv)
  late_bucket,             // a data-parallel gradient bucket still reducing after the compute
  serialized_same_stream,  // communication on the compute stream: nothing can hide it
  launch_overhead,         // waited for the host to enqueue, or for an event to be seen
  hottest_expert,          // EP ranks waited at the combine for the busiest rank's experts
  other,                   // what the timeline cannot explain
};
template <>
struct enum_names<exposure_cause> {
  static constexpr std::string_view noun = "cause";
  static constexpr std::array names = {
      enum_entry{exposure_cause::queue_blocked, "queue_blocked"},
      enum_entry{exposure_cause::sm_starved, "sm_starved"},
      enum_entry{exposure_cause::contention_slowdown, "contention_slowdown"},
      enum_entry{exposure_cause::chunking_cost, "chunking_cost"},
      enum_entry{exposure_cause::tail_not_overlapped, "tail_not_overlapped"},
      enum_entry{exposure_cause::bubble, "bubble"},
      enum_entry{exposure_cause::late_bucket, "late_bucket"},
      enum_entry{exposure_cause::serialized_same_stream, "serialized_same_stream"},
      enum_entry{exposure_cause::launch_overhead, "launch_overhead"},
      enum_entry{exposure_cause::hottest_expert, "hottest_expert"},
      enum_entry{exposure_cause::other, "other"}};
};

// What each cause means and what to try: one table for the table's "why" column, the report and
// the README.
struct cause_info {
  exposure_cause cause;
  std::string_view short_name;  // for the table's "why" column
  std::string_view meaning;
  std::string_view try_this;
};
const cause_info& info_of(exposure_cause c);
const std::array<cause_info, 11>& cause_table();

struct cause_share {
  exposure_cause cause = exposure_cause::other;
  double ms = 0;
  std::string where;  // the layer slot (or op) that contributed most to it
  // contention_slowdown only: the part that comes from the SMs the overlapped GEMMs gave up
  // (compute_with_margin − compute_only on the path); the rest is interference.
  std::optional<double> sm_margin_ms;
  // Training steps only: the parallel dimension whose communication it is (tp, cp, dp or pp;
  // the bubble is pp's), as the step's breakdown splits it; empty for layers and for `other`.
  std::string dimension{};
};

struct diagnosis {
  exposure_cause main_cause = exposure_cause::other;
  // Largest first; each at least 0.5 % of the exposed time; they sum to the exposed time. A
  // training step's causes are split per dimension, and ordered by the breakdown part that holds
  // them (tp, cp, dp, pp exposed, bubble, other: the largest part first), then largest first:
  // the main cause is in the part that holds the most exposed time.
  std::vector<cause_share> causes;
  // What the critical path attributed before scaling to the exposed time (not written out):
  // the same for the simulator; a measured timeline is one iteration, exposed_ms a median.
  double attributed_ms = 0;
};

// One variant's schedule and the intervals an executor measured for it.
struct timed_schedule {
  const schedule* s = nullptr;
  const std::vector<op_interval>* intervals = nullptr;
  bool present() const { return s && intervals && !intervals->empty(); }
};

struct diagnosis_input {
  timed_schedule overlapped;  // required
  // Baselines: each op on the critical path is compared with its own run in them. Any may be
  // absent; then nothing of that kind is attributed to slowdowns.
  timed_schedule compute_only, compute_with_margin, comm_only;
  double exposed_ms = 0;     // what the causes must add up to
  double overlapped_ms = 0;  // for the threshold below
  int cdmc = 0;              // hardware queues, to infer queue waits (<= 0: the default)
};

// nullopt when nothing is exposed (below 0.5 µs or 0.1 % of the overlapped time) or the
// overlapped intervals are missing. Otherwise the causes sum to exposed_ms.
std::optional<diagnosis> diagnose(const diagnosis_input& in);

// The same for a case's five variants as measured.
std::optional<diagnosis> diagnose_case(const variant_schedules& v, const variant_measurements& m,
                                       double exposed_ms, double overlapped_ms, int cdmc);

// A diagnosis from causes another attribution measured (a training step's, docs/ARCHITECTURE.md
// §9.4): summed per cause and dimension, negligible ones left out, scaled to exposed_ms, ordered
// as `diagnosis::causes` says. nullopt when nothing is exposed or nothing was attributed.
std::optional<diagnosis> diagnosis_of(const std::vector<cause_share>& shares, double exposed_ms,
                                      double total_ms);

// "tail 62% fc2_fprop, contention 30%": the main cause, its share and where; the second cause
// when it holds a quarter or more. A step's causes name their dimension: "serialized 77% TP
// fc1_fprop, serialized 23% DP".
std::string why_text(const diagnosis& d);
// A step cause's dimension as the tables print it: "tp" → "TP".
std::string dimension_text(const std::string& dimension);

ordered_json to_json(const diagnosis& d);
diagnosis diagnosis_from_json(const json_object& obj);

}  // namespace ob
