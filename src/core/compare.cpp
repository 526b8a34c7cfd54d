#include "core/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "core/report_table.hpp"

namespace ob {

namespace {

double relative_half_spread_pct(const stats& s) {
  if (!(s.median > 0)) return 0;
  return (s.p90 - s.p10) / 2 / s.median * 100;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string signed_pct(double v) {
  if (std::isinf(v)) return v > 0 ? "+inf%" : "-inf%";
  return (v >= 0 ? "+" : "") + fixed(v, 1) + "%";
}

ordered_json variables_of(const ordered_json& env) {
  auto it = env.find("variables");
  return it != env.end() && it->is_object() ? *it : ordered_json::object();
}

void environment_warnings(const result_doc& base, const result_doc& neu,
                          std::vector<std::string>& out) {
  auto kind = [](const result_doc& d) {
    return d.simulated() ? std::string("simulated") : std::string("measured");
  };
  if (base.simulated() != neu.simulated())
    out.push_back("comparing a " + kind(base) + " BASE with a " + kind(neu) +
                  " NEW: the difference is model error, not a performance change");
  if (base.backend() != neu.backend())
    out.push_back("backend differs: BASE " + base.backend() + ", NEW " + neu.backend());
  const std::string gb = env_gpu_name(base.env), gn = env_gpu_name(neu.env);
  if (gb != gn) out.push_back("GPU differs: BASE " + gb + ", NEW " + gn);
  const ordered_json vb = variables_of(base.env), vn = variables_of(neu.env);
  std::set<std::string> names;
  for (auto it = vb.begin(); it != vb.end(); ++it) names.insert(it.key());
  for (auto it = vn.begin(); it != vn.end(); ++it) names.insert(it.key());
  for (const std::string& n : names) {
    const std::string b = vb.contains(n) ? vb[n].dump() : "(unset)";
    const std::string v = vn.contains(n) ? vn[n].dump() : "(unset)";
    if (b != v) out.push_back("environment differs: " + n + ": BASE " + b + ", NEW " + v);
  }
}

}  // namespace

bool has_regression(const compare_outcome& o) {
  return std::any_of(o.rows.begin(), o.rows.end(), [](const compare_row& r) {
    return r.verdict == "SLOWER" || r.verdict == "WRONG";
  });
}

bool compare_outcome::has_regression() const { return ob::has_regression(*this); }

compare_outcome compare_results(const result_doc& base, const result_doc& neu,
                                double threshold_pct) {
  compare_outcome o;
  o.threshold_pct = threshold_pct;
  environment_warnings(base, neu, o.warnings);

  std::map<std::string, const case_record*> new_by_id;
  for (const case_record& c : neu.cases) new_by_id[c.id] = &c;
  std::set<std::string> base_ids;
  for (const case_record& b : base.cases) {
    base_ids.insert(b.id);
    compare_row r;
    r.id = b.id;
    r.base_ms = b.m.overlapped_ms.median;
    r.base_exposed_ms = b.m.exposed_comm_ms;
    auto it = new_by_id.find(b.id);
    if (it == new_by_id.end()) {
      r.verdict = "MISSING";
      r.in_new = false;
      o.rows.push_back(r);
      continue;
    }
    const case_record& n = *it->second;
    r.new_ms = n.m.overlapped_ms.median;
    r.new_exposed_ms = n.m.exposed_comm_ms;
    if (r.base_ms > 0)
      r.delta_pct = (r.new_ms - r.base_ms) / r.base_ms * 100;
    else if (r.new_ms > 0)
      r.delta_pct = INFINITY;
    r.noise_pct =
        relative_half_spread_pct(b.m.overlapped_ms) + relative_half_spread_pct(n.m.overlapped_ms);
    const double bar = std::max(threshold_pct, r.noise_pct);
    if (n.m.wrong > 0)
      r.verdict = "WRONG";
    else if (r.delta_pct > bar)
      r.verdict = "SLOWER";
    else if (r.delta_pct < -bar)
      r.verdict = "FASTER";
    else
      r.verdict = "SAME";
    o.rows.push_back(r);
  }
  for (const case_record& n : neu.cases) {
    if (base_ids.count(n.id)) continue;
    compare_row r;
    r.id = n.id;
    r.verdict = n.m.wrong > 0 ? "WRONG" : "NEW";
    r.in_base = false;
    r.new_ms = n.m.overlapped_ms.median;
    r.new_exposed_ms = n.m.exposed_comm_ms;
    o.rows.push_back(r);
  }
  return o;
}

std::string format_compare(const compare_outcome& o) {
  std::string out;
  for (const std::string& w : o.warnings) out += "warning: " + w + "\n";
  const std::vector<std::string> header = {"case",  "verdict", "base ms",     "new ms",
                                           "delta", "noise",   "base exp ms", "new exp ms"};
  std::vector<std::vector<std::string>> rows;
  std::map<std::string, int> counts;
  for (const compare_row& r : o.rows) {
    ++counts[r.verdict];
    const bool has_base = r.in_base, has_new = r.in_new, both = has_base && has_new;
    rows.push_back(
        {r.id, r.verdict, has_base ? fixed(r.base_ms, 3) : "-", has_new ? fixed(r.new_ms, 3) : "-",
         both ? signed_pct(r.delta_pct) : "-", both ? fixed(r.noise_pct, 1) + "%" : "-",
         has_base ? fixed(r.base_exposed_ms, 3) : "-", has_new ? fixed(r.new_exposed_ms, 3) : "-"});
  }
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& r : rows) width[c] = std::max(width[c], r[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::string pad(width[c] - cells[c].size(), ' ');
      if (c) l += "  ";
      l += c < 2 ? cells[c] + pad : pad + cells[c];
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    return l + "\n";
  };
  out += line(header);
  for (const auto& r : rows) out += line(r);
  out += "threshold " + fixed(o.threshold_pct, 1) +
         "%; a change counts only beyond max(threshold, noise); times are overlapped medians\n";
  std::string summary;
  for (const char* v : {"SAME", "FASTER", "SLOWER", "WRONG", "MISSING", "NEW"})
    if (counts[v]) {
      if (!summary.empty()) summary += ", ";
      summary += std::to_string(counts[v]) + " " + v;
    }
  out += (summary.empty() ? std::string("no cases") : summary) + "\n";
  out += has_regression(o) ? "REGRESSION\n" : "no regression\n";
  return out;
}

}  // namespace ob
