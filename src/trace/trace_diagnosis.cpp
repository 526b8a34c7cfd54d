#include "trace/trace_diagnosis.hpp"

#include <algorithm>
#include <limits>
#include <set>

#include "trace/intervals.hpp"

namespace ob::trace {
namespace {

constexpr double ns_to_ms = 1e-6;

// The step an activity belongs to (as trace_metrics splits them); -1 before the first step, and
// 0 for every activity when no step is marked.
long step_of(const rank_trace& r, std::int64_t at) {
  if (r.steps.empty()) return 0;
  const auto it =
      std::upper_bound(r.steps.begin(), r.steps.end(), at,
                       [](std::int64_t t, const step_range& s) { return t < s.start_ns; });
  return static_cast<long>(it - r.steps.begin()) - 1;
}

// A launch-to-start delay shorter than this is the launch path itself, not a wait.
constexpr std::int64_t queue_wait_ns = 10'000;

// One GPU's activity as the causes need it.
struct device_view {
  std::map<std::int64_t, std::vector<interval>> by_stream;  // every kernel, sorted by start
  std::vector<interval> compute_merged;
  std::vector<interval> compute;
  std::vector<const gpu_event*> comm;
  std::set<std::int64_t> compute_streams;
  std::map<long, std::int64_t> last_compute_end;  // per step
};

// A communication kernel that started well after its launch: queue_blocked when the kernel before
// it on its stream was still running at the launch (it waited in its own queue), sm_starved when
// compute kernels ran through most of the wait (it waited for SMs the compute held). "" else.
std::string launch_wait_cause(const gpu_event& e, const device_view& d) {
  if (e.launch_ns < 0 || e.start_ns - e.launch_ns < queue_wait_ns) return "";
  const auto stream = d.by_stream.find(e.stream);
  if (stream != d.by_stream.end()) {
    const std::vector<interval>& ks = stream->second;
    auto it = std::lower_bound(ks.begin(), ks.end(), interval{e.start_ns, e.start_ns});
    if (it != ks.begin() && std::prev(it)->second > e.launch_ns) return "queue_blocked";
  }
  const interval wait{e.launch_ns, e.start_ns};
  std::int64_t covered = 0;
  for (const interval& c : d.compute_merged) {
    if (c.first >= wait.second) break;
    if (c.second > wait.first)
      covered += std::min(c.second, wait.second) - std::max(c.first, wait.first);
  }
  return 2 * covered >= wait.second - wait.first ? "sm_starved" : "";
}

std::string cause_of(const rank_trace& r, const gpu_event& e, const device_view& d,
                     const std::vector<std::string>& dims) {
  if (d.compute_streams.count(e.stream)) return "serialized_same_stream";
  if (std::string waited = launch_wait_cause(e, d); !waited.empty()) return waited;
  const std::string dim = e.group_id < 0 ? "unknown" : dims[static_cast<std::size_t>(e.group_id)];
  const auto last = d.last_compute_end.find(step_of(r, step_time(r, e)));
  if (last == d.last_compute_end.end() || e.start_ns >= last->second)
    return dim.find("dp") != std::string::npos ? "late_bucket" : "tail_not_overlapped";
  if (e.cls.kind == kernel_kind::send_recv || dim.find("pp") != std::string::npos) return "bubble";
  return "other";
}

// Length of `iv` inside the merged, sorted `set`, reading from index `j` on (both advance
// monotonically as the caller's intervals start later and later).
std::int64_t inside(const interval& iv, const std::vector<interval>& set, std::size_t& j) {
  while (j < set.size() && set[j].second <= iv.first) ++j;
  std::int64_t sum = 0;
  for (std::size_t k = j; k < set.size() && set[k].first < iv.second; ++k)
    sum += std::min(iv.second, set[k].second) - std::max(iv.first, set[k].first);
  return sum;
}

void diagnose_device(const rank_trace& r, device_view& d, const std::vector<std::string>& dims,
                     exposure_causes& out) {
  const std::vector<interval> compute = merge_intervals(std::move(d.compute));
  d.compute_merged = compute;
  for (auto& [stream, ks] : d.by_stream) std::sort(ks.begin(), ks.end());
  std::vector<interval> comm;
  for (const gpu_event* e : d.comm) comm.emplace_back(e->start_ns, e->end_ns);
  const std::vector<interval> exposed =
      uncovered_intervals(merge_intervals(std::move(comm)), compute);
  std::sort(d.comm.begin(), d.comm.end(),
            [](const gpu_event* a, const gpu_event* b) { return a->start_ns < b->start_ns; });
  std::int64_t claimed = std::numeric_limits<std::int64_t>::min();
  std::size_t j = 0;
  for (const gpu_event* e : d.comm) {
    const interval mine{std::max(e->start_ns, claimed), e->end_ns};
    claimed = std::max(claimed, e->end_ns);
    if (mine.second <= mine.first) continue;
    const std::int64_t ns = inside(mine, exposed, j);
    if (ns > 0) out.ms[cause_of(r, *e, d, dims)] += static_cast<double>(ns) * ns_to_ms;
  }
}

}  // namespace

exposure_causes diagnose_exposure(const rank_trace& r, const std::vector<const gpu_event*>& evs,
                                  const std::vector<std::string>& dims) {
  std::map<int, device_view> devices;
  for (const gpu_event* e : evs) {
    device_view& d = devices[e->device];
    d.by_stream[e->stream].emplace_back(e->start_ns, e->end_ns);
    if (e->cls.cat == category::comm) d.comm.push_back(e);
    if (e->cls.cat != category::compute) continue;
    d.compute.emplace_back(e->start_ns, e->end_ns);
    d.compute_streams.insert(e->stream);
    std::int64_t& last = d.last_compute_end[step_of(r, step_time(r, *e))];
    last = std::max(last, e->end_ns);
  }
  exposure_causes out;
  for (auto& [dev, d] : devices) diagnose_device(r, d, dims, out);
  double best = 0;
  for (const auto& [cause, ms] : out.ms)
    if (ms > best) best = ms, out.main_cause = cause;
  return out;
}

}  // namespace ob::trace
