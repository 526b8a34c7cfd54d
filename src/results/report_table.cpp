#include "results/report_table.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "analysis/diagnosis.hpp"
#include "results/document.hpp"
#include "results/recommend.hpp"

namespace ob {

namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  // "-0.0" reads as a sign where there is none.
  if (s.find_first_not_of("-0.") == std::string::npos && s.front() == '-') s.erase(0, 1);
  return s;
}

std::string opt_ratio(const std::optional<double>& v) {
  return v ? fixed(*v, 2) + "x" : std::string("-");
}

std::string param_text(const ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

struct column {
  std::string header;
  bool right = true;  // numbers right-aligned, text left-aligned
};

std::string render(const std::vector<column>& cols,
                   const std::vector<std::vector<std::string>>& rows,
                   const std::string& line_prefix = "") {
  std::vector<std::size_t> width(cols.size());
  for (std::size_t c = 0; c < cols.size(); ++c) {
    width[c] = cols[c].header.size();
    for (const auto& r : rows) width[c] = std::max(width[c], r[c].size());
  }
  auto line = [&](auto cell_of) {
    std::string out = line_prefix;
    for (std::size_t c = 0; c < cols.size(); ++c) {
      const std::string& s = cell_of(c);
      const std::string pad(width[c] - s.size(), ' ');
      if (c) out += "  ";
      out += cols[c].right ? pad + s : s + pad;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line([&](std::size_t c) -> const std::string& { return cols[c].header; });
  for (const auto& r : rows) out += line([&](std::size_t c) -> const std::string& { return r[c]; });
  return out;
}

std::string env_string(const ordered_json& env, const char* key) {
  auto it = env.find(key);
  return it != env.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string backend_tag(const ordered_json& env) {
  auto it = env.find("simulated");
  if (it != env.end() && it->is_boolean() && it->get<bool>()) return "sim";
  return env_string(env, "backend");
}

}  // namespace

std::string env_gpu_name(const ordered_json& env) {
  auto it = env.find("gpu");
  if (it != env.end()) {
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object()) return env_string(*it, "name");
  }
  return env_string(env, "gpu_name");
}

std::string banner_line(const ordered_json& env) {
  const std::string gpu = env_gpu_name(env);
  const std::string backend = env_string(env, "backend");
  auto sim = env.find("simulated");
  if (sim != env.end() && sim->is_boolean() && sim->get<bool>())
    return "SIMULATED — model output, not a measurement (backend " +
           (backend.empty() ? std::string("sim") : backend) + (gpu.empty() ? "" : ", " + gpu) + ")";
  if (backend == "loopback")
    return "loopback (no NVLink) — one real GPU, collectives replaced by copy kernels" +
           (gpu.empty() ? std::string() : " (" + gpu + ")");
  std::string out = "measured — backend " + (backend.empty() ? std::string("unknown") : backend);
  if (!gpu.empty()) out += ", " + gpu;
  auto ranks = env.find("ranks");
  if (ranks != env.end() && ranks->is_number_integer())
    out += ", " + std::to_string(ranks->get<std::int64_t>()) + " ranks";
  return out;
}

namespace {

// Exposed comm and efficiency are relative to each method's own compute-only time, which for a
// chunked method includes the chunking's cost; the end-to-end answer is the overlapped time.
// This line compares methods on it: the best case of each, against the best `none` case.
std::string best_per_method(const result_doc& d) {
  std::map<std::string, const case_record*> best;
  for (const case_record& c : d.cases) {
    if (!c.params.is_object() || !c.params.contains("method") || c.m.wrong > 0) continue;
    const std::string method = param_text(c.params["method"]);
    auto& b = best[method];
    if (!b || c.m.overlapped_ms.median < b->m.overlapped_ms.median) b = &c;
  }
  if (best.size() < 2) return {};
  const auto none = best.find("none");
  std::string out = "best overlapped per method:";
  for (const auto& [method, c] : best) {
    out += " " + method + " " + fixed(c->m.overlapped_ms.median, 3) + " ms";
    if (none != best.end() && method != "none" && none->second->m.overlapped_ms.median > 0)
      out += " (" +
             fixed(100.0 * (1.0 - c->m.overlapped_ms.median / none->second->m.overlapped_ms.median),
                   1) +
             " % faster than none)";
    out += ";";
  }
  out.back() = '\n';
  return out;
}

}  // namespace

namespace {

// The table's width limit: wider terminals are rare, and wrapped rows cannot be read.
constexpr std::size_t max_table_width = 200;

// A metric column: its header, how important it is (columns are dropped lowest first when the
// table would be too wide) and its cell for a case.
struct metric_column {
  std::string header;
  int keep;  // higher is kept longer
  bool right;
  std::string (*cell)(const case_record&);
};

const std::vector<metric_column>& metric_columns() {
  static const std::vector<metric_column> cols = {
      {"overlapped ms", 9, true,
       [](const case_record& c) { return fixed(c.m.overlapped_ms.median, 3); }},
      {"exposed ms", 9, true, [](const case_record& c) { return fixed(c.m.exposed_comm_ms, 3); }},
      {"why", 8, false,
       [](const case_record& c) { return c.diag ? why_text(*c.diag) : std::string("-"); }},
      {"eff %", 7, true,
       [](const case_record& c) {
         return c.m.overlap_efficiency ? fixed(*c.m.overlap_efficiency * 100, 1) : "-";
       }},
      {"compute ms", 6, true, [](const case_record& c) { return fixed(c.m.compute_ms.median, 3); }},
      {"comm ms", 6, true, [](const case_record& c) { return fixed(c.m.comm_ms.median, 3); }},
      {"speedup", 4, true, [](const case_record& c) { return opt_ratio(c.m.speedup_vs_serial); }},
      {"gemm slow", 3, true, [](const case_record& c) { return opt_ratio(c.m.gemm_slowdown); }},
      {"comm slow", 3, true, [](const case_record& c) { return opt_ratio(c.m.comm_slowdown); }},
      {"serial ms", 2, true, [](const case_record& c) { return fixed(c.m.serial_ms.median, 3); }},
      {"vs sim %", 5, true,
       [](const case_record& c) {
         return c.predicted ? std::string(c.predicted->deviation_pct >= 0 ? "+" : "") +
                                  fixed(c.predicted->deviation_pct, 1)
                            : std::string("-");
       }},
      {"#wrong", 10, true, [](const case_record& c) { return std::to_string(c.m.wrong); }}};
  return cols;
}

struct param_split {
  std::vector<std::string> varying;  // widest impact first
  std::vector<std::string> fixed;    // "key=value", said once under the table
};

// Params that vary get columns, those equal in every case are said once under the table.
// Columns come in the order of how much each moves the best overlapped time.
param_split split_params(const result_doc& d) {
  std::vector<std::string> keys;
  for (const case_record& c : d.cases)
    if (c.params.is_object())
      for (auto it = c.params.begin(); it != c.params.end(); ++it)
        if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) keys.push_back(it.key());
  param_split out;
  for (const knob_impact& k : param_impacts(d)) out.varying.push_back(k.axis);
  for (const std::string& k : keys) {
    if (std::find(out.varying.begin(), out.varying.end(), k) != out.varying.end()) continue;
    // A param some cases lack (an axis that does not apply to their method) is still fixed
    // when every case that has it agrees.
    std::set<std::string> seen;
    for (const case_record& c : d.cases)
      if (c.params.is_object() && c.params.contains(k)) seen.insert(param_text(c.params[k]));
    if (seen.size() == 1 && d.cases.size() > 1)
      out.fixed.push_back(k + "=" + *seen.begin());
    else
      out.varying.push_back(k);
  }
  return out;
}

struct table_cells {
  std::vector<column> cols;
  std::vector<std::vector<std::string>> rows;
  std::vector<int> keep;  // per column
};

table_cells case_cells(const result_doc& d, const std::vector<std::string>& varying) {
  table_cells t;
  const bool ids = varying.empty() && d.cases.size() > 1;  // nothing else tells the rows apart
  const bool predicted = std::any_of(d.cases.begin(), d.cases.end(),
                                     [](const case_record& c) { return c.predicted.has_value(); });
  if (ids) t.cols.push_back({"case", false}), t.keep.push_back(10);
  for (const std::string& k : varying) t.cols.push_back({k, false}), t.keep.push_back(10);
  for (const metric_column& m : metric_columns())
    if (m.header != "vs sim %" || predicted)
      t.cols.push_back({m.header, m.right}), t.keep.push_back(m.keep);
  for (const case_record& c : d.cases) {
    std::vector<std::string> r;
    if (ids) r.push_back(c.id);
    for (const std::string& k : varying)
      r.push_back(c.params.is_object() && c.params.contains(k) ? param_text(c.params[k]) : "-");
    for (const metric_column& m : metric_columns())
      if (m.header != "vs sim %" || predicted) r.push_back(m.cell(c));
    t.rows.push_back(std::move(r));
  }
  return t;
}

std::size_t widest_line(const std::string& text) {
  std::size_t widest = 0, start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    widest = std::max(widest, end - start);
    start = end + 1;
  }
  return widest;
}

// Renders, dropping the least important metric columns until the table fits.
std::string render_fitting(table_cells t, std::vector<std::string>& dropped) {
  std::string out = render(t.cols, t.rows);
  while (widest_line(out) > max_table_width) {
    std::size_t victim = t.keep.size();
    for (std::size_t c = 0; c < t.keep.size(); ++c)
      if (t.keep[c] < 10 && (victim == t.keep.size() || t.keep[c] < t.keep[victim])) victim = c;
    if (victim == t.keep.size()) break;
    dropped.push_back(t.cols[victim].header);
    t.cols.erase(t.cols.begin() + victim);
    t.keep.erase(t.keep.begin() + victim);
    for (auto& r : t.rows) r.erase(r.begin() + victim);
    out = render(t.cols, t.rows);
  }
  return out;
}

}  // namespace

std::string format_case_table(const result_doc& d) {
  const param_split params = split_params(d);
  std::vector<std::string> dropped;
  std::string out = banner_line(d.env) + "\n";
  if (d.planned_cases) out += partial_text(d.planned_cases, d.cases.size()) + "\n";
  out += render_fitting(case_cells(d, params.varying), dropped);
  if (d.cases.empty()) out += "(no cases)\n";
  if (!params.fixed.empty()) {
    out += "all cases:";
    for (const std::string& p : params.fixed) out += " " + p;
    out += "\n";
  }
  out +=
      "times are medians; exposed = overlapped - compute; eff = 1 - exposed / comm; why = the "
      "main cause of the exposed time (docs/ARCHITECTURE.md §7.1)\n";
  if (!dropped.empty()) {
    out += "left out to fit " + std::to_string(max_table_width) + " columns:";
    for (const std::string& c : dropped) out += " " + c + ";";
    out.back() = ' ';
    out += "(all in --json and --csv)\n";
  }
  out += best_per_method(d);
  if (d.rec && !d.cases.empty()) out += recommendation_line(*d.rec, d) + "\n";
  std::int64_t wrong_cases = 0;
  for (const case_record& c : d.cases) {
    for (const std::string& w : c.warnings) out += "warning: " + c.id + ": " + w + "\n";
    if (c.m.wrong > 0) ++wrong_cases;
  }
  if (wrong_cases > 0)
    out += "FAILED: " + std::to_string(wrong_cases) +
           " case(s) produced wrong data (#wrong > 0); their times do not count\n";
  return out;
}

namespace {
std::string coll_table(const std::vector<coll_row>& rows, const std::string& banner,
                       bool simulated) {
  const std::vector<column> cols = {{"size"}, {"count"}, {"type"},  {"redop"},
                                    {"time"}, {"algbw"}, {"busbw"}, {"#wrong"}};
  const std::vector<column> units = {{"(B)"},  {"(elements)"}, {""},       {""},
                                     {"(us)"}, {"(GB/s)"},     {"(GB/s)"}, {""}};
  std::vector<std::vector<std::string>> cells;
  cells.push_back({});
  for (const column& u : units) cells.back().push_back(u.header);
  double busbw_sum = 0;
  std::int64_t wrong = 0;
  for (const coll_row& r : rows) {
    cells.push_back({std::to_string(r.size), std::to_string(r.count), r.type, r.redop,
                     fixed(r.time_us, 2), fixed(r.algbw_gbps, 2), fixed(r.busbw_gbps, 2),
                     std::to_string(r.wrong)});
    busbw_sum += r.busbw_gbps;
    wrong += r.wrong;
  }
  // nccl-tests marks header lines with '#'; keep that so its parsers read ours.
  const std::string table = render(cols, cells, "# ");
  std::string out = "# " + banner + "\n";
  if (!rows.empty())
    out += "# " + rows.front().op + ", " + std::to_string(rows.front().ranks) + " ranks\n";
  std::size_t pos = 0;
  for (std::size_t line = 0; pos < table.size(); ++line) {
    const std::size_t end = table.find('\n', pos);
    std::string l = table.substr(pos, end - pos);
    if (line >= 2) l = "  " + l.substr(2);  // data rows: no '#'
    out += l + "\n";
    pos = end + 1;
  }
  out += "# Out of bounds values : " + std::to_string(wrong) + (wrong ? " FAILED" : " OK") + "\n";
  out += "# Avg bus bandwidth    : " +
         (rows.empty() ? std::string("-") : fixed(busbw_sum / rows.size(), 2)) +
         (simulated ? " (sim)" : "") + "\n";
  return out;
}
}  // namespace

std::string format_coll_table(const std::vector<coll_row>& rows, const ordered_json& env) {
  return coll_table(rows, banner_line(env), backend_tag(env) == "sim");
}

std::string format_coll_table(const std::vector<coll_row>& rows, bool simulated,
                              const std::string& label) {
  if (simulated)
    return coll_table(rows, banner_line({{"backend", "sim"}, {"simulated", true}}), true);
  return coll_table(rows, label, false);
}

std::string format_coll_table(const coll_doc& d) { return format_coll_table(d.rows, d.env); }

}  // namespace ob
