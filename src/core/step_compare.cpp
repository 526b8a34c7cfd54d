#include "core/step_compare.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/units.hpp"

namespace ob {
namespace {

compare_side side_of(const step_doc& d) {
  compare_side s{&d.env, d.simulated(), {}};
  // A step has no verification count: a case with wrong data fails the run before it is written.
  for (const step_record& r : d.cases) s.cases.push_back({&r.id, &r.step_ms, 0});
  return s;
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
  return compare_sides(side_of(base), side_of(neu), threshold_pct);
}

std::string format_step_compare(const compare_outcome& o, const step_doc& base,
                                const step_doc& neu) {
  std::vector<std::string> header = {"case", "verdict", "base ms", "new ms", "delta", "noise"};
  for (const breakdown_part& p : breakdown_parts()) header.push_back(p.heading);
  const auto b = by_id(base), n = by_id(neu);
  std::vector<std::vector<std::string>> rows;
  for (const compare_row& r : o.rows)
    rows.push_back(row_cells(r, r.in_base ? b.at(r.id) : nullptr, r.in_new ? n.at(r.id) : nullptr));
  return compare_preamble(o) + aligned_table(header, rows, 2) +
         "breakdown columns: new - base in ms; * = beyond the case's bar as a share of the base "
         "step\n" +
         compare_summary(o, "step medians on the critical stage");
}

expect_outcome check_step_expectation(const step_doc& baseline, const step_doc& run,
                                      double tolerance_pct, const std::string& baseline_path) {
  const auto b = by_id(baseline), n = by_id(run);
  return expectation_of(compare_steps(baseline, run, tolerance_pct), tolerance_pct, baseline_path,
                        [&](expect_row& e, double bar) {
                          const std::string parts = moved_parts(*b.at(e.id), *n.at(e.id), bar);
                          e.hint = parts.empty()
                                       ? "no single part of the breakdown moved past the bar"
                                       : "moved: " + parts;
                        });
}

}  // namespace ob
