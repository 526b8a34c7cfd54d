#include "core/report_table.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

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

std::string format_case_table(const result_doc& d) {
  const std::string tag = backend_tag(d.env);
  std::vector<column> cols = {
      {"case" + (tag.empty() || tag == "cuda" ? "" : " (" + tag + ")"), false},
      {"exposed ms"},
      {"eff %"},
      {"overlapped ms"},
      {"compute ms"},
      {"comm ms"},
      {"serial ms"},
      {"speedup"},
      {"gemm slow"},
      {"comm slow"},
      {"#wrong"}};

  // Params that vary get columns; those equal everywhere are said once, under the table.
  std::vector<std::string> keys;
  std::map<std::string, std::vector<std::string>> values;  // key -> one text per case
  for (std::size_t i = 0; i < d.cases.size(); ++i) {
    const ordered_json& p = d.cases[i].params;
    if (!p.is_object()) continue;
    for (auto it = p.begin(); it != p.end(); ++it) {
      auto [slot, fresh] = values.try_emplace(it.key(), d.cases.size(), "-");
      if (fresh) keys.push_back(it.key());
      slot->second[i] = param_text(it.value());
    }
  }
  std::vector<std::string> varying, fixed_params;
  for (const std::string& k : keys) {
    const auto& v = values[k];
    if (d.cases.size() > 1 && std::all_of(v.begin(), v.end(), [&](auto& s) { return s == v[0]; }))
      fixed_params.push_back(k + "=" + v[0]);
    else
      varying.push_back(k);
  }
  for (const std::string& k : varying) cols.push_back({k, false});

  std::vector<std::vector<std::string>> rows;
  for (std::size_t i = 0; i < d.cases.size(); ++i) {
    const case_record& c = d.cases[i];
    const case_metrics& m = c.m;
    std::vector<std::string> r = {
        c.id,
        fixed(m.exposed_comm_ms, 3),
        m.overlap_efficiency ? fixed(*m.overlap_efficiency * 100, 1) : "-",
        fixed(m.overlapped_ms.median, 3),
        fixed(m.compute_ms.median, 3),
        fixed(m.comm_ms.median, 3),
        fixed(m.serial_ms.median, 3),
        opt_ratio(m.speedup_vs_serial),
        opt_ratio(m.gemm_slowdown),
        opt_ratio(m.comm_slowdown),
        std::to_string(m.wrong)};
    for (const std::string& k : varying) r.push_back(values[k][i]);
    rows.push_back(std::move(r));
  }

  std::string out = banner_line(d.env) + "\n";
  out += render(cols, rows);
  if (d.cases.empty()) out += "(no cases)\n";
  if (!fixed_params.empty()) {
    out += "all cases:";
    for (const std::string& p : fixed_params) out += " " + p;
    out += "\n";
  }
  out += "times are medians; exposed = overlapped - compute; eff = 1 - exposed / comm\n";
  out += best_per_method(d);
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
