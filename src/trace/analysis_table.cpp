// The table `analyze` prints (≤ 200 columns): one line per rank, then communication per kind and
// per dimension as a mean over ranks, the steps' spread, the slowest rank and the unknown names.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "trace/analyze.hpp"

namespace ob::trace {
namespace {

std::string base_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

std::string fmt(const char* f, double a, double b = 0, double c = 0, double d = 0) {
  char buf[160];
  std::snprintf(buf, sizeof buf, f, a, b, c, d);
  return buf;
}

void rank_lines(std::ostringstream& o, const analysis& a) {
  o << "rank   span_ms  compute_ms   comm_ms  exposed_ms  overlap%  steps  main cause of exposure  "
       "file\n";
  for (const rank_metrics& r : a.ranks) {
    char buf[200];
    const std::string cause = r.causes.main_cause.empty() ? "-" : r.causes.main_cause;
    std::snprintf(buf, sizeof buf, "%4d %9.3f %11.3f %9.3f %11.3f %9.1f %6zu  %-22s  %s\n", r.rank,
                  r.t.span_ms, r.t.compute_ms, r.t.comm_ms, r.t.exposed_comm_ms, r.t.overlap_pct,
                  r.steps.size(), cause.c_str(), base_name(r.file).substr(0, 80).c_str());
    o << buf;
  }
}

// Mean per rank of each part (a rank without the part counts as 0).
void part_lines(std::ostringstream& o, const analysis& a, const std::string& title,
                std::map<std::string, part_metrics> rank_metrics::*member) {
  std::map<std::string, part_metrics> sum;
  for (const rank_metrics& r : a.ranks)
    for (const auto& [k, p] : r.*member) {
      sum[k].ms += p.ms, sum[k].exposed_ms += p.exposed_ms, sum[k].kernels += p.kernels;
    }
  if (sum.empty()) return;
  const double n = static_cast<double>(a.ranks.size());
  o << "\n" << title << " (mean per rank)\n";
  o << "  part                 comm_ms  exposed_ms   kernels\n";
  for (const auto& [k, p] : sum) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "  %-18s %9.3f %11.3f %9.0f\n", k.substr(0, 18).c_str(),
                  p.ms / n, p.exposed_ms / n, static_cast<double>(p.kernels) / n);
    o << buf;
  }
}

void summary_lines(std::ostringstream& o, const analysis& a) {
  const analysis_summary& s = a.summary;
  std::size_t steps = 0;
  for (const rank_metrics& r : a.ranks) steps += r.steps.size();
  o << "\n";
  if (steps > 0)
    o << "steps: " << steps << " over " << a.ranks.size() << " ranks"
      << fmt("; step median %.3f ms (p10 %.3f, p90 %.3f, max %.3f)", s.step_ms.median,
             s.step_ms.p10, s.step_ms.p90, s.step_ms.max)
      << fmt("; exposed comm median %.3f ms (p10 %.3f, p90 %.3f)\n", s.exposed_comm_ms.median,
             s.exposed_comm_ms.p10, s.exposed_comm_ms.p90);
  else
    o << "steps: none marked (no ProfilerStep#N or NVTX step ranges); whole traces measured\n";
  o << "slowest rank: " << s.slowest_rank << " (" << base_name(s.slowest_file) << ")"
    << (steps > 0 ? ", median step " : ", span ") << fmt("%.3f ms\n", s.slowest_ms);
}

// The most frequent first: those are the ones a new rule in kernel_class.cpp would move most.
void unknown_lines(std::ostringstream& o, const analysis& a) {
  std::map<std::string, long long> all;
  for (const rank_metrics& r : a.ranks)
    for (const auto& [name, n] : r.unknown_kernels) all[name] += n;
  if (all.empty()) return;
  std::vector<std::pair<long long, std::string>> order;
  for (const auto& [name, n] : all) order.emplace_back(-n, name);
  std::sort(order.begin(), order.end());
  o << "unknown kernels (counted as compute, no rule in src/trace/kernel_class.cpp): " << all.size()
    << "\n";
  for (std::size_t i = 0; i < order.size() && i < 10; ++i)
    o << "  " << -order[i].first << "x " << order[i].second.substr(0, 120) << "\n";
  if (order.size() > 10)
    o << "  ... " << order.size() - 10 << " more in the JSON (ranks[].unknown_kernels)\n";
}

}  // namespace

std::string format_analysis(const analysis& a) {
  std::ostringstream o;
  std::set<std::string> formats;
  for (const rank_metrics& r : a.ranks) formats.insert(r.format);
  o << "MEASURED from " << a.files.size() << " trace file" << (a.files.size() == 1 ? "" : "s")
    << " (" << *formats.begin() << (formats.size() > 1 ? ", nsys" : "") << "): ";
  for (std::size_t i = 0; i < a.files.size() && i < 3; ++i)
    o << (i ? ", " : "") << base_name(a.files[i]).substr(0, 50);
  if (a.files.size() > 3) o << " +" << a.files.size() - 3 << " more";
  o << "\n"
    << (a.last_steps > 0 ? "the last " + std::to_string(a.last_steps) + " step(s) of each rank\n"
                         : "");
  rank_lines(o, a);
  part_lines(o, a, "communication by kind", &rank_metrics::by_kind);
  std::string dims = "communication by dimension";
  if (a.layout)
    dims += " (tp=" + std::to_string(a.layout->tp) + " cp=" + std::to_string(a.layout->cp) +
            " dp=" + std::to_string(a.layout->dp) + " pp=" + std::to_string(a.layout->pp) + ")";
  part_lines(o, a, dims, &rank_metrics::by_dim);
  summary_lines(o, a);
  unknown_lines(o, a);
  return o.str();
}

std::string analysis_markdown(const analysis& a,
                              const std::vector<std::pair<std::string, std::string>>& figures,
                              const std::string& problem) {
  std::ostringstream o;
  o << "# Exposed communication, MEASURED\n\n"
    << "Every number comes from the trace files named below (overlap-bench analyze; definitions "
       "in docs/ANALYZE.md of overlap-bench). The JSON beside this file is analysis.json.\n\n";
  for (const std::string& f : a.files) o << "- `" << f << "`\n";
  o << "\n```\n" << format_analysis(a) << "```\n";
  for (const auto& [file, caption] : figures) o << "\n![" << caption << "](" << file << ")\n";
  if (!problem.empty()) o << "\nNo pictures: " << problem << "\n";
  return o.str();
}

}  // namespace ob::trace
