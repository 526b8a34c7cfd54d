#include "trace/trace_metrics.hpp"

#include <algorithm>
#include <limits>

#include "trace/intervals.hpp"

namespace ob::trace {
namespace {

constexpr double ns_to_ms = 1e-6;

// The intervals of one GPU, split the ways the metrics need.
struct device_sets {
  std::vector<interval> compute, comm, memory;
  std::map<std::string, std::vector<interval>> by_kind, by_dim, compute_by_kind;
};

void add_part(std::map<std::string, part_metrics>& out,
              const std::map<std::string, std::vector<interval>>& parts,
              const std::vector<interval>* cover) {
  for (const auto& [key, ivs] : parts) {
    part_metrics& p = out[key];
    const std::vector<interval> merged = merge_intervals(ivs);
    p.ms += static_cast<double>(covered_length(merged)) * ns_to_ms;
    if (cover) p.exposed_ms += static_cast<double>(uncovered_length(merged, *cover)) * ns_to_ms;
    p.kernels += static_cast<long long>(ivs.size());
  }
}

// The per-group dimension names, computed once per rank.
std::vector<std::string> group_dims(const rank_trace& r, const measure_options& opt) {
  std::vector<std::string> dims;
  for (const std::vector<int>& g : r.groups)
    dims.push_back(opt.layout ? dimension_of(g, *opt.layout) : "unknown");
  return dims;
}

// Metrics of a subset of a rank's events; `detail` also fills the per-kind maps.
void measure_events(const rank_trace& r, const std::vector<const gpu_event*>& evs,
                    const std::vector<std::string>& dims, const measure_options& opt,
                    rank_metrics* detail, totals& t) {
  std::map<int, device_sets> devices;
  std::int64_t first = 0, last = 0;
  for (const gpu_event* e : evs) {
    first = t.kernels == 0 ? e->start_ns : std::min(first, e->start_ns);
    last = t.kernels == 0 ? e->end_ns : std::max(last, e->end_ns);
    ++t.kernels;
    device_sets& d = devices[e->device];
    const interval iv{e->start_ns, e->end_ns};
    const std::string kind(kind_name(e->cls.kind));
    if (e->cls.cat == category::compute) {
      d.compute.push_back(iv);
      if (detail) d.compute_by_kind[kind].push_back(iv);
    } else if (e->cls.cat == category::memory) {
      d.memory.push_back(iv);
    } else {
      d.comm.push_back(iv);
      if (detail) d.by_kind[kind].push_back(iv);
      if (detail && opt.layout)
        d.by_dim[e->group_id < 0 ? "unknown" : dims[e->group_id]].push_back(iv);
    }
    if (detail && is_unknown(e->cls)) ++detail->unknown_kernels[r.names[e->name_id]];
  }
  for (auto& [dev, d] : devices) {
    const std::vector<interval> compute = merge_intervals(std::move(d.compute));
    const std::vector<interval> comm = merge_intervals(std::move(d.comm));
    t.compute_ms += static_cast<double>(covered_length(compute)) * ns_to_ms;
    t.comm_ms += static_cast<double>(covered_length(comm)) * ns_to_ms;
    t.memory_ms += static_cast<double>(covered_length(merge_intervals(d.memory))) * ns_to_ms;
    t.exposed_comm_ms += static_cast<double>(uncovered_length(comm, compute)) * ns_to_ms;
    if (!detail) continue;
    add_part(detail->by_kind, d.by_kind, &compute);
    add_part(detail->by_dim, d.by_dim, &compute);
    add_part(detail->compute_by_kind, d.compute_by_kind, nullptr);
  }
  t.span_ms = static_cast<double>(last - first) * ns_to_ms;
  t.overlap_pct = t.comm_ms > 0 ? 100.0 * (t.comm_ms - t.exposed_comm_ms) / t.comm_ms : 0.0;
}

// Events per step index (into r.steps); events before the first step are in none.
std::vector<std::vector<const gpu_event*>> split_by_step(const rank_trace& r) {
  std::vector<std::vector<const gpu_event*>> out(r.steps.size());
  std::vector<std::int64_t> starts;
  for (const step_range& s : r.steps) starts.push_back(s.start_ns);
  for (const gpu_event& e : r.events) {
    const auto it = std::upper_bound(starts.begin(), starts.end(), step_time(r, e));
    if (it == starts.begin()) continue;
    out[static_cast<std::size_t>(it - starts.begin() - 1)].push_back(&e);
  }
  return out;
}

// At most max_timeline_intervals of `v`, relative to `origin`.
std::vector<interval> window(std::vector<interval> v, std::int64_t origin, bool& truncated) {
  if (v.size() > max_timeline_intervals) v.resize(max_timeline_intervals), truncated = true;
  for (interval& iv : v) iv.first -= origin, iv.second -= origin;
  return v;
}

rank_timeline timeline_of(const std::vector<const gpu_event*>& evs, long long step) {
  rank_timeline tl;
  tl.step = step;
  tl.device = evs.front()->device;
  for (const gpu_event* e : evs) tl.device = std::min(tl.device, e->device);
  std::vector<interval> compute, comm;
  tl.origin_ns = std::numeric_limits<std::int64_t>::max();
  for (const gpu_event* e : evs) {
    if (e->device != tl.device) continue;
    tl.origin_ns = std::min(tl.origin_ns, e->start_ns);
    if (e->cls.cat == category::compute) compute.emplace_back(e->start_ns, e->end_ns);
    if (e->cls.cat == category::comm) comm.emplace_back(e->start_ns, e->end_ns);
  }
  compute = merge_intervals(std::move(compute));
  comm = merge_intervals(std::move(comm));
  tl.exposed = window(uncovered_intervals(comm, compute), tl.origin_ns, tl.truncated);
  tl.compute = window(std::move(compute), tl.origin_ns, tl.truncated);
  tl.comm = window(std::move(comm), tl.origin_ns, tl.truncated);
  return tl;
}

// The step of median span among the kept ones (index into per_step), or -1 without steps.
long median_step(const std::vector<std::vector<const gpu_event*>>& per_step,
                 const std::vector<step_metrics>& steps, std::size_t first_step) {
  std::vector<std::pair<double, long>> spans;
  std::size_t k = 0;
  for (std::size_t i = first_step; i < per_step.size(); ++i)
    if (!per_step[i].empty()) spans.emplace_back(steps[k++].t.span_ms, static_cast<long>(i));
  if (spans.empty()) return -1;
  std::nth_element(spans.begin(), spans.begin() + static_cast<long>(spans.size() / 2), spans.end());
  return spans[spans.size() / 2].second;
}

}  // namespace

rank_metrics measure_rank(const rank_trace& r, const measure_options& opt) {
  rank_metrics m;
  m.rank = r.rank;
  m.file = r.file;
  m.format = r.format;
  const std::vector<std::string> dims = group_dims(r, opt);
  std::vector<std::vector<const gpu_event*>> per_step = split_by_step(r);
  std::size_t first_step = 0;
  if (opt.last_steps > 0 && per_step.size() > static_cast<std::size_t>(opt.last_steps))
    first_step = per_step.size() - static_cast<std::size_t>(opt.last_steps);
  std::vector<const gpu_event*> kept;
  if (opt.last_steps > 0 && !per_step.empty()) {
    for (std::size_t i = first_step; i < per_step.size(); ++i)
      kept.insert(kept.end(), per_step[i].begin(), per_step[i].end());
  } else {
    for (const gpu_event& e : r.events) kept.push_back(&e);
  }
  measure_events(r, kept, dims, opt, &m, m.t);
  m.causes = diagnose_exposure(r, kept, dims);
  for (std::size_t i = first_step; i < per_step.size(); ++i) {
    if (per_step[i].empty()) continue;
    step_metrics s{r.steps[i].number, {}};
    measure_events(r, per_step[i], dims, opt, nullptr, s.t);
    m.steps.push_back(s);
  }
  if (opt.timeline && !kept.empty()) {
    const long i = median_step(per_step, m.steps, first_step);
    m.timeline = i < 0 ? timeline_of(kept, -1)
                       : timeline_of(per_step[static_cast<std::size_t>(i)],
                                     r.steps[static_cast<std::size_t>(i)].number);
  }
  return m;
}

}  // namespace ob::trace
