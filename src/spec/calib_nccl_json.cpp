// Two JSON formats NCCL's own tools write (docs/CALIBRATION.md §4): nccl-tests' -J report
// (nccl-tests src/util.cu, format version 2) and the NCCL Inspector plugin's per-collective
// records (NCCL ext-profiler/inspector, format v4).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>
#include <tuple>

#include "base/enum_names.hpp"
#include "base/error.hpp"
#include "spec/calib_input.hpp"

namespace ob {

namespace {

// "all_reduce_perf" (nccl-tests' binary) or "AllReduce" (NCCL's name) -> a collective the model
// has; nullopt for the others (broadcast, alltoall, ...).
std::optional<coll_op> op_of(std::string name) {
  const auto slash = name.find_last_of('/');
  if (slash != std::string::npos) name.erase(0, slash + 1);
  if (const auto perf = name.find("_perf"); perf != std::string::npos) name.erase(perf);
  std::string flat;
  for (char c : name)
    if (c != '_') flat += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (coll_op op : {coll_op::all_gather, coll_op::reduce_scatter, coll_op::all_reduce}) {
    std::string n(to_string(op));
    n.erase(std::remove(n.begin(), n.end(), '_'), n.end());
    if (flat == n) return op;
  }
  return std::nullopt;
}

}  // namespace

bool is_nccl_tests_json(const json& doc) {
  return doc.is_object() && doc.contains("results") && doc.contains("config") &&
         doc.contains("args") && doc["results"].is_array();
}

// The op from the binary's name (args[0]); ranks = device lines x threads x GPUs per thread;
// each row's out-of-place time (in-place when out-of-place is null, as for trace replay).
void read_nccl_tests_json(const std::string& path, const json& doc, calib_points& out) {
  // json::exception from a missing field becomes a config_error naming the file (read_json_input).
  const json& args = doc.at("args");
  const std::string binary = args.empty() ? "" : args.at(0).get<std::string>();
  const std::optional<coll_op> op = op_of(binary);
  if (!op) return out.excluded.push_back(path + ": " + binary + ": not a collective the model has");
  const json& cfg = doc.at("config");
  const int ranks =
      static_cast<int>(cfg.at("devices").size()) * cfg.value("nthreads", 1) * cfg.value("ngpus", 1);
  if (ranks < 2) throw config_error(path + ": config.devices: fewer than 2 ranks");
  const json& rows = doc.at("results");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const json& r = rows[i];
    const json& timed = r.contains("out_of_place") && !r["out_of_place"].is_null()
                            ? r["out_of_place"]
                            : r.at("in_place");
    const std::string where = path + ": results[" + std::to_string(i) + "]";
    if (!timed.contains("time")) {
      out.excluded.push_back(where + ": CPU time (-C), not the GPU time the model predicts");
      continue;
    }
    coll_point p;
    p.op = *op;
    p.ranks = ranks;
    p.bytes = r.at("size").get<std::uint64_t>();
    p.time_us = timed.at("time").get<double>();
    p.where = where;
    if (p.bytes > 0 && p.time_us > 0) out.colls.push_back(p);
  }
}

bool looks_like_inspector(const std::string& text) {
  return text.find("\"coll_perf\"") != std::string::npos &&
         text.find("\"header\"") != std::string::npos;
}

// One JSON object per collective and communicator, one after another. Records of the same
// (collective, ranks, size) are one point at their median time: a run repeats each many times.
// The Inspector's message size is the per-rank buffer for AllGather and ReduceScatter (its
// algorithm bandwidth is size x ranks / time), the buffer for AllReduce.
void read_inspector(const std::string& path, const std::string& text, calib_points& out) {
  std::istringstream in(text);
  std::map<std::tuple<coll_op, int, std::uint64_t>, std::vector<double>> times;
  std::size_t n = 0, others = 0;
  while ((in >> std::ws).peek() != EOF) {
    try {
      json rec;
      in >> rec;
      const json& perf = rec.at("coll_perf");
      const std::optional<coll_op> op = op_of(perf.at("coll").get<std::string>());
      const double us = perf.at("coll_exec_time_us").get<double>();
      const auto msg = perf.at("coll_msg_size_bytes").get<std::uint64_t>();
      const int ranks = rec.at("header").at("n_ranks").get<int>();
      ++n;
      if (!op || us <= 0 || msg == 0) {
        ++others;
        continue;
      }
      // nccl-tests' size: the all-reduce buffer; all ranks' buffers for the other two.
      const std::uint64_t bytes = *op == coll_op::all_reduce ? msg : msg * ranks;
      times[{*op, ranks, bytes}].push_back(us);
    } catch (const json::exception& e) {
      throw config_error(path + ": Inspector record " + std::to_string(n) + ": " + e.what());
    }
  }
  if (others > 0)
    out.excluded.push_back(path + ": " + std::to_string(others) +
                           " records of collectives the model does not have, or without a time");
  for (auto& [key, us] : times) {
    std::sort(us.begin(), us.end());
    coll_point p;
    std::tie(p.op, p.ranks, p.bytes) = key;
    p.time_us = us[us.size() / 2];
    p.where = path + ": " + std::string(to_string(p.op)) + " x" + std::to_string(us.size());
    if (p.ranks > 1) out.colls.push_back(p);
  }
}

}  // namespace ob
