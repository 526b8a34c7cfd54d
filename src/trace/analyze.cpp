#include "trace/analyze.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "base/error.hpp"
#include "trace/kineto_reader.hpp"
#include "trace/nsys_reader.hpp"
#include "trace/trace_input.hpp"

namespace ob::trace {
namespace fs = std::filesystem;

namespace {

bool trace_name(const std::string& name) {
  const auto ends = [&](const std::string& tail) {
    return name.size() >= tail.size() &&
           name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
  };
  return ends(".json") || ends(".json.gz") || ends(".sqlite");
}

// An overlap-bench document (an earlier --json or --report into the traces' folder): its first
// bytes name an overlap-bench schema. A folder's files skip it; a file named outright is read.
bool overlap_bench_document(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(256, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));
  return head.find("\"schema\": \"overlap-bench/") != std::string::npos;
}

// The layout's world: a given dp fixes it; else the largest world any Kineto trace reports,
// else one rank per input file.
int world_of(const parallel_layout& l, int reported, int files) {
  if (l.dp > 0) return l.tp * l.cp * l.pp * l.dp;
  return std::max(reported, files);
}

// nsys exports carry no process groups of their own: NCCL's NVTX payloads of every file together
// say which world ranks joined each communicator (docs/ANALYZE.md §4). Read before any file is
// measured; empty without nsys files or payloads.
comm_groups nsys_groups(const std::vector<std::string>& files) {
  std::vector<std::vector<nsys_comm>> per_file;
  for (const std::string& f : files)
    if (sniff_format(f) == file_format::nsys_sqlite) per_file.push_back(read_nsys_communicators(f));
  return communicator_groups(per_file);
}

// One Kineto file is one rank; an nsys export holds one rank per GPU it profiled.
std::vector<rank_trace> read_file(const std::string& path, const std::string& marker,
                                  const comm_groups& groups) {
  if (sniff_format(path) == file_format::nsys_sqlite) return read_nsys(path, marker, &groups);
  std::vector<rank_trace> one;
  one.push_back(read_kineto(path, marker));
  return one;
}

// nsys times count from each session's start; files from several sessions line up only through
// TARGET_INFO_SESSION_START_TIME. Kineto's are epoch times already.
void check_clocks(const std::vector<std::string>& unaligned, std::size_t nsys_files) {
  if (nsys_files > 1 && !unaligned.empty())
    throw config_error(unaligned.front() +
                       ": ranks whose clocks cannot be aligned: no TARGET_INFO_SESSION_START_TIME "
                       "table, and " +
                       std::to_string(nsys_files) +
                       " nsys files were given (re-export with a current nsys)");
}

// Numbers the ranks without one (rank = -1) in input order, with the numbers no trace claimed.
void number_ranks(std::vector<rank_metrics>& ranks) {
  std::map<int, std::string> claimed;
  for (const rank_metrics& r : ranks) {
    if (r.rank < 0) continue;
    const auto [it, added] = claimed.emplace(r.rank, r.file);
    if (!added)
      throw config_error(r.file + ": claims rank " + std::to_string(r.rank) + ", as does " +
                         it->second + "; give each rank's trace once");
  }
  int next = 0;
  for (rank_metrics& r : ranks) {
    if (r.rank >= 0) continue;
    while (claimed.count(next)) ++next;
    r.rank = next;
    claimed.emplace(next, r.file);
  }
  std::sort(ranks.begin(), ranks.end(),
            [](const rank_metrics& a, const rank_metrics& b) { return a.rank < b.rank; });
}

analysis_summary summarize(const std::vector<rank_metrics>& ranks) {
  analysis_summary s;
  std::vector<double> spans, exposed;
  for (const rank_metrics& r : ranks) {
    std::vector<double> mine;
    for (const step_metrics& st : r.steps) {
      spans.push_back(st.t.span_ms), exposed.push_back(st.t.exposed_comm_ms);
      mine.push_back(st.t.span_ms);
    }
    if (r.steps.empty()) spans.push_back(r.t.span_ms), exposed.push_back(r.t.exposed_comm_ms);
    const double typical = mine.empty() ? r.t.span_ms : compute_stats(mine).median;
    if (s.slowest_rank < 0 || typical > s.slowest_ms)
      s.slowest_rank = r.rank, s.slowest_file = r.file, s.slowest_ms = typical;
  }
  s.step_ms = compute_stats(spans);
  s.exposed_comm_ms = compute_stats(exposed);
  return s;
}

}  // namespace

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (const fs::directory_entry& e : fs::directory_iterator(in, ec))
        if (e.is_regular_file() && trace_name(e.path().filename().string()) &&
            !overlap_bench_document(e.path().string()))
          found.push_back(e.path().string());
      if (found.empty())
        throw config_error(in + ": a folder without traces (*.json, *.json.gz, *.sqlite)");
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(in, ec)) {
      files.push_back(in);
    } else {
      throw config_error(in + ": no such trace file or folder");
    }
  }
  if (files.empty()) throw config_error("analyze: give at least one trace file or folder");
  return files;
}

analysis analyze_traces(const analyze_request& req) {
  analysis a;
  a.files = expand_inputs(req.inputs);
  a.last_steps = req.last_steps;
  std::optional<parallel_layout> given;
  if (!req.layout.empty()) given = parse_layout(req.layout);
  std::vector<std::string> unaligned;
  std::size_t nsys_files = 0;
  const comm_groups groups = nsys_groups(a.files);
  for (const std::string& f : a.files) {
    std::vector<rank_trace> traces = read_file(f, req.step_marker, groups);
    nsys_files += traces.front().format == "nsys" ? 1 : 0;
    for (rank_trace& t : traces) {
      if (!t.clock_known && (unaligned.empty() || unaligned.back() != f)) unaligned.push_back(f);
      measure_options opt;
      opt.last_steps = req.last_steps;
      opt.timeline = req.timelines && a.ranks.size() < max_timeline_ranks;
      if (given) {
        opt.layout = resolve_layout(
            *given, world_of(*given, t.world_size, static_cast<int>(a.files.size())));
        a.layout = opt.layout;
      }
      a.ranks.push_back(measure_rank(t, opt));
    }
  }
  check_clocks(unaligned, nsys_files);
  number_ranks(a.ranks);
  a.summary = summarize(a.ranks);
  return a;
}

}  // namespace ob::trace
