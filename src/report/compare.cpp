#include "report/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "results/document.hpp"
#include "results/report_table.hpp"

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

ordered_json variables_of(const ordered_json& env) {
  auto it = env.find("variables");
  return it != env.end() && it->is_object() ? *it : ordered_json::object();
}

std::string env_text(const ordered_json& env, const char* key) {
  auto it = env.find(key);
  return it != env.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void environment_warnings(const compare_side& base, const compare_side& neu,
                          std::vector<std::string>& out) {
  auto kind = [](const compare_side& d) {
    return d.simulated ? std::string("simulated") : std::string("measured");
  };
  if (base.simulated != neu.simulated)
    out.push_back("comparing a " + kind(base) + " BASE with a " + kind(neu) +
                  " NEW: the difference is model error, not a performance change");
  const std::string bb = env_text(*base.env, "backend"), bn = env_text(*neu.env, "backend");
  if (bb != bn) out.push_back("backend differs: BASE " + bb + ", NEW " + bn);
  const std::string gb = env_gpu_name(*base.env), gn = env_gpu_name(*neu.env);
  if (gb != gn) out.push_back("GPU differs: BASE " + gb + ", NEW " + gn);
  const ordered_json vb = variables_of(*base.env), vn = variables_of(*neu.env);
  std::set<std::string> names;
  for (auto it = vb.begin(); it != vb.end(); ++it) names.insert(it.key());
  for (auto it = vn.begin(); it != vn.end(); ++it) names.insert(it.key());
  for (const std::string& n : names) {
    const std::string b = vb.contains(n) ? vb[n].dump() : "(unset)";
    const std::string v = vn.contains(n) ? vn[n].dump() : "(unset)";
    if (b != v) out.push_back("environment differs: " + n + ": BASE " + b + ", NEW " + v);
  }
}

// Two simulated documents of different model versions (env.sim_model, e.g. sim-v2 and sim-v2.1)
// differ by the model's change as well: it must not read as a regression or a gain.
void model_warnings(const compare_side& base, const compare_side& neu,
                    std::vector<std::string>& out) {
  if (!base.simulated || !neu.simulated) return;
  const std::string mb = env_text(*base.env, "sim_model"), mn = env_text(*neu.env, "sim_model");
  if (mb == mn) return;
  auto shown = [](const std::string& m) { return m.empty() ? std::string("(not recorded)") : m; };
  out.push_back("simulator model differs: BASE " + shown(mb) + ", NEW " + shown(mn) +
                ": the times differ by the model's change too, not only by a performance change");
}

// Simulated documents repeat nothing: each case is one deterministic iteration.
void spread_notes(const compare_side& base, const compare_side& neu,
                  std::vector<std::string>& out) {
  if (!base.simulated && !neu.simulated) return;
  const std::string which = base.simulated && neu.simulated ? "BASE and NEW are"
                            : base.simulated                ? "BASE is"
                                                            : "NEW is";
  out.push_back(which +
                " simulated: one deterministic iteration per case (n = 1, cv 0), so there is "
                "no noise and the times are compared exactly against the threshold");
}

void judge(compare_row& r, const compare_side::entry& b, const compare_side::entry& n,
           double threshold_pct) {
  r.base_ms = b.time->median;
  r.new_ms = n.time->median;
  if (r.base_ms > 0)
    r.delta_pct = (r.new_ms - r.base_ms) / r.base_ms * 100;
  else if (r.new_ms > 0)
    r.delta_pct = INFINITY;
  r.noise_pct = relative_half_spread_pct(*b.time) + relative_half_spread_pct(*n.time);
  r.bar_pct = std::max(threshold_pct, r.noise_pct);
  if (n.wrong > 0)
    r.verdict = "WRONG";
  else if (r.delta_pct > r.bar_pct)
    r.verdict = "SLOWER";
  else if (r.delta_pct < -r.bar_pct)
    r.verdict = "FASTER";
  else
    r.verdict = "SAME";
}

}  // namespace

bool has_regression(const compare_outcome& o) {
  return std::any_of(o.rows.begin(), o.rows.end(), [](const compare_row& r) {
    return r.verdict == "SLOWER" || r.verdict == "WRONG";
  });
}

bool compare_outcome::has_regression() const { return ob::has_regression(*this); }

std::size_t compare_outcome::matched() const {
  return static_cast<std::size_t>(std::count_if(
      rows.begin(), rows.end(), [](const compare_row& r) { return r.in_base && r.in_new; }));
}

std::string signed_pct_text(double v) {
  if (std::isinf(v)) return v > 0 ? "+inf%" : "-inf%";
  return (v >= 0 ? "+" : "") + fixed(v, 1) + "%";
}

compare_outcome compare_sides(const compare_side& base, const compare_side& neu,
                              double threshold_pct) {
  compare_outcome o;
  o.threshold_pct = threshold_pct;
  environment_warnings(base, neu, o.warnings);
  model_warnings(base, neu, o.warnings);
  spread_notes(base, neu, o.notes);
  std::map<std::string, const compare_side::entry*> new_by_key;
  for (const compare_side::entry& c : neu.cases) new_by_key[c.key] = &c;
  std::set<std::string> base_keys;
  for (const compare_side::entry& b : base.cases) {
    base_keys.insert(b.key);
    compare_row r;
    r.id = r.base_id = *b.id;
    auto it = new_by_key.find(b.key);
    if (it == new_by_key.end()) {
      r.verdict = "MISSING";
      r.base_ms = b.time->median;
      r.in_new = false;
    } else {
      r.new_id = *it->second->id;
      // Ids differ when a param held constant in each document changed between them (a step).
      if (r.new_id != r.base_id) r.id = b.key.empty() ? r.new_id : b.key;
      judge(r, b, *it->second, threshold_pct);
    }
    o.rows.push_back(r);
  }
  for (const compare_side::entry& n : neu.cases) {
    if (base_keys.count(n.key)) continue;
    compare_row r;
    r.id = r.new_id = *n.id;
    r.verdict = n.wrong > 0 ? "WRONG" : "NEW";
    r.in_base = false;
    r.new_ms = n.time->median;
    o.rows.push_back(r);
  }
  return o;
}

void partial_warnings(const std::optional<std::size_t>& base_planned, std::size_t base_cases,
                      const std::optional<std::size_t>& new_planned, std::size_t new_cases,
                      std::vector<std::string>& out) {
  if (base_planned) out.push_back("BASE is " + partial_text(base_planned, base_cases));
  if (new_planned) out.push_back("NEW is " + partial_text(new_planned, new_cases));
}

compare_outcome compare_results(const result_doc& base, const result_doc& neu,
                                double threshold_pct) {
  auto side = [](const result_doc& d) {
    compare_side s{&d.env, d.simulated(), {}};
    for (const case_record& c : d.cases)
      s.cases.push_back({&c.id, &c.m.overlapped_ms, c.m.wrong, c.id});
    return s;
  };
  compare_outcome o = compare_sides(side(base), side(neu), threshold_pct);
  partial_warnings(base.planned_cases, base.cases.size(), neu.planned_cases, neu.cases.size(),
                   o.warnings);
  std::map<std::string, double> base_exposed, new_exposed;
  for (const case_record& c : base.cases) base_exposed[c.id] = c.m.exposed_comm_ms;
  for (const case_record& c : neu.cases) new_exposed[c.id] = c.m.exposed_comm_ms;
  for (compare_row& r : o.rows) {
    if (r.in_base) r.base_exposed_ms = base_exposed[r.base_id];
    if (r.in_new) r.new_exposed_ms = new_exposed[r.new_id];
  }
  return o;
}

std::string compare_preamble(const compare_outcome& o) {
  std::string out;
  for (const std::string& w : o.warnings) out += "warning: " + w + "\n";
  for (const std::string& n : o.notes) out += "note: " + n + "\n";
  return out;
}

std::string aligned_table(const std::vector<std::string>& header,
                          const std::vector<std::vector<std::string>>& rows, std::size_t left) {
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
      l += c < left ? cells[c] + pad : pad + cells[c];
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    return l + "\n";
  };
  std::string out = line(header);
  for (const auto& r : rows) out += line(r);
  return out;
}

std::string compare_summary(const compare_outcome& o, const std::string& times) {
  std::map<std::string, int> counts;
  for (const compare_row& r : o.rows) ++counts[r.verdict];
  std::string out = "threshold " + fixed(o.threshold_pct, 1) +
                    "%; a change counts only beyond max(threshold, noise); times are " + times +
                    "\n";
  std::string summary;
  for (const char* v : {"SAME", "FASTER", "SLOWER", "WRONG", "MISSING", "NEW"})
    if (counts[v]) {
      if (!summary.empty()) summary += ", ";
      summary += std::to_string(counts[v]) + " " + v;
    }
  out += (summary.empty() ? std::string("no cases") : summary) + "\n";
  // No case in both: a verdict of "no regression" would claim a check that never happened.
  if (o.matched() == 0)
    out += "NOTHING COMPARED: no case is in both documents\n";
  else
    out += has_regression(o) ? "REGRESSION\n" : "no regression\n";
  return out;
}

std::string format_compare(const compare_outcome& o) {
  const std::vector<std::string> header = {"case",  "verdict", "base ms",     "new ms",
                                           "delta", "noise",   "base exp ms", "new exp ms"};
  std::vector<std::vector<std::string>> rows;
  for (const compare_row& r : o.rows) {
    const bool has_base = r.in_base, has_new = r.in_new, both = has_base && has_new;
    rows.push_back(
        {r.id, r.verdict, has_base ? fixed(r.base_ms, 3) : "-", has_new ? fixed(r.new_ms, 3) : "-",
         both ? signed_pct_text(r.delta_pct) : "-", both ? fixed(r.noise_pct, 1) + "%" : "-",
         has_base ? fixed(r.base_exposed_ms, 3) : "-", has_new ? fixed(r.new_exposed_ms, 3) : "-"});
  }
  return compare_preamble(o) + aligned_table(header, rows, 2) +
         compare_summary(o, "overlapped medians");
}

}  // namespace ob
