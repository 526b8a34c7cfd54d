#include "report/step_compare.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "base/units.hpp"

namespace ob {
namespace {

std::string param_text(const ordered_json& params, const std::string& name) {
  auto it = params.find(name);
  if (it == params.end()) return "-";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// Every param name of the document's cases, in first-seen order.
std::vector<std::string> param_names(const step_doc& d) {
  std::vector<std::string> out;
  for (const step_record& r : d.cases)
    for (auto it = r.params.begin(); it != r.params.end(); ++it)
      if (std::find(out.begin(), out.end(), it.key()) == out.end()) out.push_back(it.key());
  return out;
}

bool varies_in(const step_doc& d, const std::string& name) {
  std::set<std::string> values;
  for (const step_record& r : d.cases) values.insert(param_text(r.params, name));
  return values.size() > 1;
}

// The params whose values differ between the cases of either document: what tells its cases
// apart, as a layer sweep's ids name only its axes. Every flag of `step` is an axis, so a flag
// changed between two runs is a param constant in each; matching on the full id would make
// every case MISSING or NEW (docs/ARCHITECTURE.md §7, compare).
std::vector<std::string> varying_params(const step_doc& base, const step_doc& neu) {
  std::vector<std::string> names = param_names(base), out;
  for (const std::string& n : param_names(neu))
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  for (const std::string& n : names)
    if (varies_in(base, n) || varies_in(neu, n)) out.push_back(n);
  return out;
}

std::string match_key(const step_record& r, const std::vector<std::string>& varying) {
  std::string key;
  for (const std::string& n : varying)
    key += (key.empty() ? "" : ",") + n + "=" + param_text(r.params, n);
  return key;
}

compare_side side_of(const step_doc& d, const std::vector<std::string>& varying) {
  compare_side s{&d.env, d.simulated(), {}};
  // A step has no verification count: a case with wrong data fails the run before it is written.
  for (const step_record& r : d.cases)
    s.cases.push_back({&r.id, &r.step_ms, 0, match_key(r, varying)});
  return s;
}

// The params held constant in each document whose value changed between them ("tp: BASE 4, NEW
// 8"): what the comparison is about once the cases are matched on the varying params.
std::string changed_constants(const step_doc& base, const step_doc& neu,
                              const std::vector<std::string>& varying) {
  if (base.cases.empty() || neu.cases.empty()) return "";
  std::vector<std::string> names = param_names(base);
  for (const std::string& n : param_names(neu))
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  std::string out;
  for (const std::string& n : names) {
    if (std::find(varying.begin(), varying.end(), n) != varying.end()) continue;
    const std::string b = param_text(base.cases.front().params, n);
    const std::string v = param_text(neu.cases.front().params, n);
    if (b != v) out += (out.empty() ? "" : "; ") + n + ": BASE " + b + ", NEW " + v;
  }
  return out;
}

std::map<std::string, const step_record*> by_id(const step_doc& d) {
  std::map<std::string, const step_record*> out;
  for (const step_record& r : d.cases) out[r.id] = &r;
  return out;
}

// Appended, not concatenated: GCC 12 misreads `"+" + std::string` here (-Wstringop-overflow).
std::string signed_ms(double v) {
  std::string out = v >= 0 ? "+" : "";
  out += format_fixed(v, 1);
  return out;
}

// A part moved when its change exceeds the case's bar, taken as a share of the base step: the
// parts have no spread of their own, and a part is judged by what it does to the step.
bool moved(double delta_ms, double bar_pct, double base_step_ms) {
  return std::abs(delta_ms) > bar_pct / 100 * base_step_ms;
}

// The parts that moved, largest change first: "dp_exposed +52.1 ms, bubble -3.0 ms".
std::string moved_parts(const step_record& b, const step_record& n, double bar_pct) {
  std::vector<std::pair<double, std::string>> parts;
  for (const breakdown_part& p : breakdown_parts()) {
    const double delta = n.breakdown_ms.*p.value - b.breakdown_ms.*p.value;
    if (moved(delta, bar_pct, b.step_ms.median)) parts.emplace_back(delta, p.key);
  }
  std::stable_sort(parts.begin(), parts.end(), [](const auto& x, const auto& y) {
    return std::abs(x.first) > std::abs(y.first);
  });
  std::string out;
  for (const auto& [delta, key] : parts)
    out += (out.empty() ? "" : ", ") + key + " " + signed_ms(delta) + " ms";
  return out;
}

std::vector<std::string> row_cells(const compare_row& r, const step_record* b,
                                   const step_record* n) {
  const bool both = b && n;
  std::vector<std::string> cells = {r.id,
                                    r.verdict,
                                    b ? format_fixed(r.base_ms, 1) : "-",
                                    n ? format_fixed(r.new_ms, 1) : "-",
                                    both ? signed_pct_text(r.delta_pct) : "-",
                                    both ? format_fixed(r.noise_pct, 1) + "%" : "-"};
  for (const breakdown_part& p : breakdown_parts()) {
    if (!both) {
      cells.push_back("-");
      continue;
    }
    const double delta = n->breakdown_ms.*p.value - b->breakdown_ms.*p.value;
    cells.push_back(signed_ms(delta) + (moved(delta, r.bar_pct, r.base_ms) ? "*" : ""));
  }
  return cells;
}

}  // namespace

compare_outcome compare_steps(const step_doc& base, const step_doc& neu, double threshold_pct) {
  const std::vector<std::string> varying = varying_params(base, neu);
  compare_outcome o = compare_sides(side_of(base, varying), side_of(neu, varying), threshold_pct);
  partial_warnings(base.planned_cases, base.cases.size(), neu.planned_cases, neu.cases.size(),
                   o.warnings);
  if (const std::string changed = changed_constants(base, neu, varying); !changed.empty()) {
    std::string on;
    for (const std::string& n : varying) on += (on.empty() ? "" : ", ") + n;
    o.notes.push_back("cases matched on the params that vary between cases (" +
                      (on.empty() ? std::string("none: one case each") : on) +
                      "); held constant in each document but changed between them: " + changed);
  }
  return o;
}

std::string format_step_compare(const compare_outcome& o, const step_doc& base,
                                const step_doc& neu) {
  std::vector<std::string> header = {"case", "verdict", "base ms", "new ms", "delta", "noise"};
  for (const breakdown_part& p : breakdown_parts()) header.push_back(p.heading);
  const auto b = by_id(base), n = by_id(neu);
  std::vector<std::vector<std::string>> rows;
  for (const compare_row& r : o.rows)
    rows.push_back(
        row_cells(r, r.in_base ? b.at(r.base_id) : nullptr, r.in_new ? n.at(r.new_id) : nullptr));
  return compare_preamble(o) + aligned_table(header, rows, 2) +
         "breakdown columns: new - base in ms; * = beyond the case's bar as a share of the base "
         "step\n" +
         compare_summary(o, "step medians on the critical stage");
}

expect_outcome check_step_expectation(const step_doc& baseline, const step_doc& run,
                                      double tolerance_pct, const std::string& baseline_path) {
  const auto b = by_id(baseline), n = by_id(run);
  return expectation_of(
      compare_steps(baseline, run, tolerance_pct), tolerance_pct, baseline_path,
      [&](expect_row& e, const compare_row& row) {
        const std::string parts = moved_parts(*b.at(row.base_id), *n.at(row.new_id), row.bar_pct);
        e.hint = parts.empty() ? "no single part of the breakdown moved past the bar"
                               : "moved: " + parts;
      });
}

}  // namespace ob
