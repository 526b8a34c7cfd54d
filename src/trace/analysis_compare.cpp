#include "trace/analysis_compare.hpp"

#include <cmath>
#include <cstdio>
#include <map>

#include "base/error.hpp"
#include "trace/analyze.hpp"

namespace ob::trace {
namespace {

// A document's parts, mean per rank: the totals, and exposed time per dimension and kind.
struct doc_parts {
  std::map<std::string, double> ms;
};

double number_at(const ordered_json& obj, const std::string& key, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_number())
    throw config_error(where + "." + key + ": expected a number in an analysis document");
  return it->get<double>();
}

void add_parts(doc_parts& p, const ordered_json& parts, const std::string& prefix,
               const std::string& where, double weight) {
  if (!parts.is_object()) throw config_error(where + ": expected an object");
  for (auto it = parts.begin(); it != parts.end(); ++it)
    p.ms[prefix + it.key()] += weight * number_at(it.value(), "exposed_ms", where + "." + it.key());
}

doc_parts read_parts(const ordered_json& doc, const std::string& file) {
  if (!doc.is_object() || doc.value("schema", "") != analysis_schema_v1)
    throw config_error(file + ": schema: expected " + std::string(analysis_schema_v1));
  const auto ranks = doc.find("ranks");
  if (ranks == doc.end() || !ranks->is_array() || ranks->empty())
    throw config_error(file + ": ranks: expected a non-empty array");
  doc_parts p;
  const double w = 1.0 / static_cast<double>(ranks->size());
  for (std::size_t i = 0; i < ranks->size(); ++i) {
    const ordered_json& r = (*ranks)[i];
    const std::string where = file + ": ranks[" + std::to_string(i) + "]";
    if (!r.is_object()) throw config_error(where + ": expected an object");
    p.ms["exposed_comm"] += w * number_at(r, "exposed_comm_ms", where);
    p.ms["total comm"] += w * number_at(r, "comm_ms", where);
    p.ms["total compute"] += w * number_at(r, "compute_ms", where);
    add_parts(p, r.value("by_dim", ordered_json::object()), "dim ", where + ".by_dim", w);
    add_parts(p, r.value("by_kind", ordered_json::object()), "kind ", where + ".by_kind", w);
  }
  const auto summary = doc.find("summary");
  if (summary != doc.end() && summary->contains("step_ms"))
    p.ms["step_median"] = number_at((*summary)["step_ms"], "median", file + ": summary.step_ms");
  return p;
}

// Exposed time and the step are watched; total communication and compute are context.
bool watched(const std::string& part) { return part.rfind("total ", 0) != 0; }

}  // namespace

bool analysis_comparison::regression() const {
  for (const analysis_delta& d : rows)
    if (d.regression) return true;
  return false;
}

analysis_comparison compare_analyses(const ordered_json& base, const std::string& base_file,
                                     const ordered_json& neu, const std::string& new_file,
                                     double threshold_pct) {
  const doc_parts b = read_parts(base, base_file), n = read_parts(neu, new_file);
  std::map<std::string, analysis_delta> rows;
  for (const auto& [part, ms] : b.ms) rows[part].base_ms = ms;
  for (const auto& [part, ms] : n.ms) rows[part].new_ms = ms;
  analysis_comparison c;
  for (auto& [part, d] : rows) {
    d.part = part;
    d.watched = watched(part);
    const double grew = d.new_ms - d.base_ms;
    d.regression = d.watched && grew >= 0.001 && grew > threshold_pct / 100.0 * d.base_ms;
    c.rows.push_back(d);
  }
  return c;
}

std::string format_analysis_comparison(const analysis_comparison& c, const std::string& base_file,
                                       const std::string& new_file) {
  std::string out = "MEASURED: " + new_file + " against " + base_file +
                    " (ms, mean per rank; exposed time unless named)\n";
  out += "part                       base_ms      new_ms     change  verdict\n";
  for (const analysis_delta& d : c.rows) {
    const double pct = d.base_ms > 0 ? 100.0 * (d.new_ms - d.base_ms) / d.base_ms : 0.0;
    const char* verdict = d.regression ? "WORSE" : (d.watched ? "ok" : "-");
    char buf[200];
    std::snprintf(buf, sizeof buf, "%-24s %10.3f %11.3f %+9.1f%%  %s\n",
                  d.part.substr(0, 24).c_str(), d.base_ms, d.new_ms, pct, verdict);
    out += buf;
  }
  out += c.regression() ? "verdict: regression in exposed communication\n"
                        : "verdict: no regression\n";
  return out;
}

}  // namespace ob::trace
