// The analysis document (results/schema/analysis_v1.schema.json) and the table.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "base/build_info.hpp"
#include "trace/analyze.hpp"

namespace ob::trace {
namespace {

// Milliseconds to the microsecond: the precision Kineto writes.
double ms3(double v) { return static_cast<double>(std::llround(v * 1000.0)) / 1000.0; }

ordered_json totals_json(const totals& t) {
  ordered_json j;
  j["span_ms"] = ms3(t.span_ms);
  j["compute_ms"] = ms3(t.compute_ms);
  j["comm_ms"] = ms3(t.comm_ms);
  j["memory_ms"] = ms3(t.memory_ms);
  j["exposed_comm_ms"] = ms3(t.exposed_comm_ms);
  j["overlap_pct"] = std::round(t.overlap_pct * 100.0) / 100.0;
  j["kernels"] = t.kernels;
  return j;
}

ordered_json parts_json(const std::map<std::string, part_metrics>& parts, bool exposed) {
  ordered_json j = ordered_json::object();
  for (const auto& [key, p] : parts) {
    ordered_json e;
    e["ms"] = ms3(p.ms);
    if (exposed) e["exposed_ms"] = ms3(p.exposed_ms);
    e["kernels"] = p.kernels;
    j[key] = e;
  }
  return j;
}

// The causes, the largest first (docs/ANALYZE.md §6); they sum to exposed_comm_ms.
ordered_json diagnosis_json(const exposure_causes& c) {
  std::vector<std::pair<double, std::string>> order;
  for (const auto& [cause, ms] : c.ms) order.emplace_back(-ms, cause);
  std::sort(order.begin(), order.end());
  ordered_json causes = ordered_json::array();
  for (const auto& [neg_ms, cause] : order)
    causes.push_back(ordered_json{{"cause", cause}, {"ms", ms3(-neg_ms)}});
  ordered_json j;
  j["main_cause"] = c.main_cause.empty() ? ordered_json(nullptr) : ordered_json(c.main_cause);
  j["causes"] = causes;
  return j;
}

ordered_json rank_json(const rank_metrics& r) {
  ordered_json j;
  j["rank"] = r.rank;
  j["file"] = r.file;
  j["format"] = r.format;
  const ordered_json t = totals_json(r.t);
  for (auto it = t.begin(); it != t.end(); ++it) j[it.key()] = it.value();
  j["by_kind"] = parts_json(r.by_kind, true);
  j["by_dim"] = parts_json(r.by_dim, true);
  j["compute_by_kind"] = parts_json(r.compute_by_kind, false);
  ordered_json steps = ordered_json::array();
  for (const step_metrics& s : r.steps) {
    ordered_json e;
    e["step"] = s.number;
    const ordered_json t = totals_json(s.t);
    for (auto it = t.begin(); it != t.end(); ++it) e[it.key()] = it.value();
    steps.push_back(e);
  }
  j["steps"] = steps;
  ordered_json unknown = ordered_json::object();
  for (const auto& [name, n] : r.unknown_kernels) unknown[name] = n;
  j["unknown_kernels"] = unknown;
  j["diagnosis"] = diagnosis_json(r.causes);
  return j;
}

ordered_json layout_json(const std::optional<parallel_layout>& l) {
  if (!l) return nullptr;
  return ordered_json{{"tp", l->tp}, {"cp", l->cp}, {"dp", l->dp}, {"pp", l->pp}, {"ep", l->ep}};
}

}  // namespace

ordered_json analysis_to_json(const analysis& a) {
  ordered_json j;
  j["schema"] = analysis_schema_v1;
  j["measured"] = true;
  j["tool"] =
      ordered_json{{"name", "overlap-bench"}, {"version", OB_VERSION}, {"git_sha", OB_GIT_SHA}};
  j["inputs"] = a.files;
  j["layout"] = layout_json(a.layout);
  j["last_steps"] = a.last_steps > 0 ? ordered_json(a.last_steps) : ordered_json(nullptr);
  ordered_json ranks = ordered_json::array();
  for (const rank_metrics& r : a.ranks) ranks.push_back(rank_json(r));
  j["ranks"] = ranks;
  ordered_json s;
  s["step_ms"] = to_json(a.summary.step_ms);
  s["exposed_comm_ms"] = to_json(a.summary.exposed_comm_ms);
  s["slowest_rank"] = ordered_json{{"rank", a.summary.slowest_rank},
                                   {"file", a.summary.slowest_file},
                                   {"ms", ms3(a.summary.slowest_ms)}};
  j["summary"] = s;
  return j;
}

namespace {

// Nanoseconds to milliseconds, kept to the nanosecond.
double ms6(std::int64_t ns) { return static_cast<double>(ns) / 1e6; }

ordered_json intervals_json(const std::vector<interval>& v) {
  ordered_json j = ordered_json::array();
  for (const interval& iv : v) j.push_back({ms6(iv.first), ms6(iv.second)});
  return j;
}

}  // namespace

ordered_json timelines_to_json(const analysis& a) {
  ordered_json doc;
  doc["source"] = "MEASURED";
  doc["inputs"] = a.files;
  doc["ranks"] = ordered_json::array();
  for (const rank_metrics& r : a.ranks) {
    if (!r.timeline) continue;
    const rank_timeline& t = *r.timeline;
    ordered_json j;
    j["rank"] = r.rank;
    j["file"] = r.file;
    j["step"] = t.step < 0 ? ordered_json() : ordered_json(t.step);
    j["device"] = t.device;
    j["compute_ms"] = intervals_json(t.compute);
    j["comm_ms"] = intervals_json(t.comm);
    j["exposed_ms"] = intervals_json(t.exposed);
    j["truncated"] = t.truncated;
    doc["ranks"].push_back(j);
  }
  return doc;
}

}  // namespace ob::trace
