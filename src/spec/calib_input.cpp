#include "spec/calib_input.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/enum_names.hpp"
#include "base/error.hpp"
#include "base/json_util.hpp"

namespace ob {

namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw config_error(path + ": cannot read calibration input");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string cell;
  std::stringstream ss(line);
  while (std::getline(ss, cell, sep)) {
    cell.erase(0, cell.find_first_not_of(" \t\r"));
    cell.erase(cell.find_last_not_of(" \t\r") + 1);
    out.push_back(cell);
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

double number(const std::string& s, const std::string& where) {
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size() && v > 0) return v;
  } catch (const std::exception&) {
  }
  throw config_error(where + ": expected a positive number, got '" + s + "'");
}

// M,N,K,dtype,TFLOP/s with a header naming them (any order, any case); an optional group
// column makes a row a grouped GEMM of that many equal [M, K] x [K, N] members (MoE experts).
void read_gemm_csv(const std::string& path, const std::string& text, calib_points& out) {
  std::stringstream ss(text);
  std::string line;
  std::getline(ss, line);
  const auto head = split(lower(line), ',');
  auto find = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) {
      const auto it = std::find(head.begin(), head.end(), n);
      if (it != head.end()) return static_cast<std::size_t>(it - head.begin());
    }
    return head.size();
  };
  auto col = [&](std::initializer_list<const char*> names) {
    const std::size_t c = find(names);
    if (c == head.size())
      throw config_error(path + ":1: the header must name M, N, K, dtype and TFLOP/s columns");
    return c;
  };
  const std::size_t cm = col({"m"}), cn = col({"n"}), ck = col({"k"}), cd = col({"dtype"}),
                    ct = col({"tflop/s", "tflops"}), cg = find({"group", "groups"});
  for (int no = 2; std::getline(ss, line); ++no) {
    if (line.empty() || line[0] == '#') continue;
    const auto cells = split(line, ',');
    const std::string where = path + ":" + std::to_string(no);
    if (cells.size() < head.size())
      throw config_error(where + ": expected " + std::to_string(head.size()) + " columns");
    gemm_point p;
    p.shape.m = static_cast<std::int64_t>(number(cells[cm], where + ": M"));
    p.shape.n = static_cast<std::int64_t>(number(cells[cn], where + ": N"));
    p.shape.k = static_cast<std::int64_t>(number(cells[ck], where + ": K"));
    p.shape.type = parse_enum<dtype>(cells[cd], where + ": dtype");
    p.tflops = number(cells[ct], where + ": TFLOP/s");
    if (cg < head.size()) {
      const double groups = number(cells[cg], where + ": group");
      if (groups > 65536 || groups != std::floor(groups))
        throw config_error(where +
                           ": group: expected a whole number of members (at most 65536), got '" +
                           cells[cg] + "'");
      p.shape.group = static_cast<int>(groups);
    }
    p.where = where;
    out.gemms.push_back(p);
  }
}

std::string op_from_test_name(std::string s) {
  const auto end = s.find("_perf");
  if (end != std::string::npos) s = s.substr(0, end);
  return s;
}

// nccl-tests stdout: header comments, then rows "size count type redop root time algbw busbw
// #wrong time algbw busbw #wrong" (out-of-place first). One file may hold several runs, one after
// another: each starts with its own "# nThread ..." or "# Collective test starting" line.
struct nccl_section {
  std::string op, algorithm;
  int ranks = 0, nvlink_domain = 0;
  std::vector<coll_point> rows;
};

void flush_section(const std::string& path, nccl_section& sec, calib_points& out) {
  if (!sec.rows.empty()) {
    const std::string where = sec.rows.front().where;
    if (sec.op.empty())
      throw config_error(where +
                         ": nccl-tests output names no collective (add '# op: all_reduce')");
    if (sec.ranks < 2) throw config_error(where + ": nccl-tests output lists fewer than 2 ranks");
    for (coll_point& p : sec.rows) {
      p.op = parse_enum<coll_op>(sec.op, path + ": op");
      p.ranks = sec.ranks;
      p.algorithm = sec.algorithm;
      p.nvlink_domain = sec.nvlink_domain;
      out.colls.push_back(p);
    }
  }
  sec = nccl_section{};
}

bool starts_run(const std::vector<std::string>& w, const std::string& l) {
  return (w.size() >= 2 && w[1] == "nThread") ||
         l.find("collective test starting:") != std::string::npos;
}

void read_nccl_header(const std::vector<std::string>& w, const std::string& l, nccl_section& sec) {
  if (l.find("collective test starting:") != std::string::npos)
    sec.op = op_from_test_name(w.back());
  if (w.size() >= 3 && lower(w[1]) == "op:") sec.op = w[2];
  if (w.size() >= 3 && lower(w[1]) == "algorithm:") sec.algorithm = lower(w[2]);
  if (w.size() >= 2 && w[1] == "Rank") ++sec.ranks;
  if (w.size() >= 3 && lower(w[1]) == "ranks:") sec.ranks = std::stoi(w[2]);
  if (w.size() >= 3 && lower(w[1]) == "nvlink-domain:") {
    sec.nvlink_domain = std::atoi(w[2].c_str());
    if (sec.nvlink_domain < 1 || sec.nvlink_domain > 4096)
      throw config_error("nccl-tests header '# nvlink-domain: " + w[2] +
                         "': expected GPUs per NVLink domain, 1 to 4096");
  }
}

void read_nccl_tests(const std::string& path, const std::string& text, calib_points& out) {
  std::stringstream ss(text);
  std::string line;
  nccl_section sec;
  for (int no = 1; std::getline(ss, line); ++no) {
    std::stringstream ls(line);
    std::vector<std::string> w;
    for (std::string t; ls >> t;) w.push_back(t);
    if (w.empty()) continue;
    if (w[0] == "#") {
      const std::string l = lower(line);
      // A new run's header after rows: the rows so far belong to the previous run.
      if (starts_run(w, l) && !sec.rows.empty()) flush_section(path, sec, out);
      read_nccl_header(w, l, sec);
      continue;
    }
    if (w.size() < 9 || !std::isdigit(static_cast<unsigned char>(w[0][0]))) continue;
    coll_point p;
    const std::string where = path + ":" + std::to_string(no);
    p.bytes = static_cast<std::uint64_t>(number(w[0], where + ": size"));
    p.time_us = number(w[5], where + ": time");
    p.where = where;
    sec.rows.push_back(p);
  }
  flush_section(path, sec, out);
}

// Collectives that are not NCCL across GPUs teach the collective model nothing: loopback runs
// replace them by copy-proxy kernels, and ranks sharing one GPU contend for it.
std::string not_nccl_across_gpus(const json& doc) {
  const json env = doc.value("env", json::object());
  if (env.value("backend", "") == "loopback") return "loopback: copy-proxy kernels, not NCCL";
  if (env.value("ranks_share_gpus", false)) return "ranks share one GPU";
  return {};
}

void read_coll_doc(const std::string& path, const json& doc, calib_points& out) {
  if (const std::string why = not_nccl_across_gpus(doc); !why.empty())
    return out.excluded.push_back(path + ": collective rows left out (" + why + ")");
  for (std::size_t i = 0; i < doc.at("rows").size(); ++i) {
    const json& r = doc["rows"][i];
    coll_point p;
    p.op = parse_enum<coll_op>(r.at("op").get<std::string>(), path + ": rows.op");
    p.ranks = r.at("ranks").get<int>();
    p.bytes = r.at("size").get<std::uint64_t>();
    p.time_us = r.at("time_us").get<double>();
    p.where = path + ": rows[" + std::to_string(i) + "]";
    if (p.ranks > 1 && p.time_us > 0) out.colls.push_back(p);
  }
}

// A pair result: its GEMM rate (compute_only: all SMs) and its collective alone (comm_only).
void read_result_doc(const std::string& path, const json& doc, calib_points& out) {
  const json& cfg = doc.at("config");
  if (cfg.value("scenario", "") != "pair")
    return out.skipped.push_back(path +
                                 ": a layer result holds no standalone GEMM or collective "
                                 "points (pair results and coll rows do)");
  if (doc.at("cases").empty()) return out.skipped.push_back(path + ": a pair result with no cases");
  const json& c = doc["cases"][0];
  const std::string where = path + ": cases[0]";
  if (!c.at("gemm_tflops").is_null()) {
    gemm_point g;
    const json& s = cfg.at("gemm");
    g.shape.m = s.at("m").get<std::int64_t>();
    g.shape.n = s.at("n").get<std::int64_t>();
    g.shape.k = s.at("k").get<std::int64_t>();
    g.shape.type = parse_enum<dtype>(s.at("dtype").get<std::string>(), where + ": dtype");
    g.tflops = c["gemm_tflops"].get<double>();
    g.where = where;
    out.gemms.push_back(g);
  }
  const json& col = cfg.at("collective");
  if (col.at("ranks").get<int>() < 2 || c.at("comm_ms").is_null()) return;
  if (const std::string why = not_nccl_across_gpus(doc); !why.empty())
    return out.excluded.push_back(where + ": collective left out (" + why + ")");
  coll_point p;
  p.op = parse_enum<coll_op>(col.at("op").get<std::string>(), where + ": op");
  p.ranks = col["ranks"].get<int>();
  p.bytes = col.at("bytes").get<std::uint64_t>();
  p.time_us = c["comm_ms"].at("median").get<double>() * 1e3;
  p.where = where;
  out.colls.push_back(p);
}

// bench_cuda's GEMMs with an SM-count target ("gemm/<shape>/bf16/sm100") ran on fewer SMs by
// design: they are not the full-GPU rate the GEMM model is fitted to.
bool sm_limited(const json& b, const std::string& name) {
  if (b.contains("sm_target") && b["sm_target"].is_number() && b["sm_target"].get<double>() > 0)
    return true;
  for (std::size_t at = name.find("/sm"); at != std::string::npos; at = name.find("/sm", at + 1))
    if (at + 3 < name.size() && std::isdigit(static_cast<unsigned char>(name[at + 3]))) return true;
  return false;
}

// Google Benchmark JSON from bench_cuda: GEMM entries carry m, n, k and TFLOPS counters.
void read_benchmark_doc(const std::string& path, const json& doc, calib_points& out) {
  for (std::size_t i = 0; i < doc.at("benchmarks").size(); ++i) {
    const json& b = doc["benchmarks"][i];
    if (!b.contains("TFLOPS") || !b.contains("m")) continue;
    const std::string name = b.value("name", "");
    const std::string where = path + ": benchmarks[" + std::to_string(i) + "]";
    if (sm_limited(b, name)) {
      out.excluded.push_back(where + " (" + name + "): SM-limited GEMM, not a full-GPU point");
      continue;
    }
    gemm_point g;
    g.shape.m = static_cast<std::int64_t>(b["m"].get<double>());
    g.shape.n = static_cast<std::int64_t>(b["n"].get<double>());
    g.shape.k = static_cast<std::int64_t>(b["k"].get<double>());
    g.shape.type = name.find("fp8") != std::string::npos ? dtype::fp8 : dtype::bf16;
    g.tflops = b["TFLOPS"].get<double>();
    g.where = where;
    if (g.tflops > 0) out.gemms.push_back(g);
  }
}

// "" when `doc` holds calibration points; else why not (a folder skips such files, a file named
// on the command line is an error).
std::string not_an_input(const json& doc) {
  if (!doc.is_object()) return "not a JSON object";
  if (doc.value("simulated", false)) return "a simulated document; calibrate needs measurements";
  const std::string schema = doc.value("schema", "");
  if (schema == "overlap-bench/coll/v1" || schema == "overlap-bench/result/v1") return {};
  if (doc.contains("benchmarks") || is_nccl_tests_json(doc)) return {};
  if (!schema.empty()) return "holds no GEMM or collective points (" + schema + ")";
  return "not a result, coll or Google Benchmark document";
}

void read_json_input(const std::string& path, calib_points& out, bool in_folder) {
  const json doc = load_json_file(path);
  if (const std::string why = not_an_input(doc); !why.empty()) {
    if (!in_folder) throw config_error(path + ": " + why);
    return out.skipped.push_back(path + ": " + why);
  }
  try {
    const std::string schema = doc.value("schema", "");
    if (schema == "overlap-bench/coll/v1") return read_coll_doc(path, doc, out);
    if (schema == "overlap-bench/result/v1") return read_result_doc(path, doc, out);
    if (is_nccl_tests_json(doc)) return read_nccl_tests_json(path, doc, out);
    return read_benchmark_doc(path, doc, out);
  } catch (const json::exception& e) {
    throw config_error(path + ": " + e.what());
  }
}

bool looks_like_nccl_tests(const std::string& text) {
  return text.find("# nThread") != std::string::npos ||
         lower(text).find("collective test starting") != std::string::npos ||
         text.find("# op:") != std::string::npos;
}

void read_input(const std::string& path, calib_points& out, bool in_folder) {
  const std::string ext = fs::path(path).extension().string();
  const std::string text = slurp(path);
  // Inspector records are several JSON objects in one file, whatever its extension.
  if (looks_like_inspector(text)) return read_inspector(path, text, out);
  if (ext == ".json") return read_json_input(path, out, in_folder);
  // In a folder the extension decides: a step's log names a command line with commas in it.
  if (in_folder) {
    if (ext == ".csv") return read_gemm_csv(path, text, out);
    if (!looks_like_nccl_tests(text))
      return out.skipped.push_back(path + ": not a GEMM CSV or nccl-tests output");
    return read_nccl_tests(path, text, out);
  }
  const std::string first = lower(text.substr(0, text.find('\n')));
  if (first.find(',') != std::string::npos && first.find("dtype") != std::string::npos)
    return read_gemm_csv(path, text, out);
  read_nccl_tests(path, text, out);
}

}  // namespace

void read_calibration_input(const std::string& path, calib_points& out) {
  out.files.push_back(path);
  read_input(path, out, false);
}

void read_calibration_inputs(const std::string& path, calib_points& out) {
  if (!fs::is_directory(path)) {
    if (!fs::exists(path)) throw config_error(path + ": no such calibration input");
    return read_calibration_input(path, out);
  }
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(path))
    if (e.is_regular_file()) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) {
    const std::string ext = fs::path(f).extension().string();
    if (ext == ".md") continue;  // notes beside the points
    // A results folder also holds logs, pictures, archives and summaries.
    if (ext != ".json" && ext != ".csv" && ext != ".txt" && ext != ".log" && ext != ".out") {
      out.skipped.push_back(f + ": not a calibration input (" +
                            (ext.empty() ? std::string("no extension") : ext) + ")");
      continue;
    }
    const std::size_t before = out.gemms.size() + out.colls.size();
    read_input(f, out, true);
    if (out.gemms.size() + out.colls.size() != before) out.files.push_back(f);
  }
}

}  // namespace ob
