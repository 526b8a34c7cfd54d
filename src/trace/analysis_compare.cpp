#include "trace/analysis_compare.hpp"

#include <algorithm>
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

std::vector<model_part> measured_step_parts(const analysis& a) {
  std::vector<model_part> parts{{"step", a.summary.step_ms.median, 0}, {"compute", 0, 0}};
  for (const char* d : {"tp", "cp", "dp", "pp", "ep"})
    parts.push_back({std::string(d) + " exposed", 0, 0});
  parts.push_back({"bubble", 0, 0});
  const auto add = [&parts](const std::string& part, double ms) {
    for (model_part& p : parts)
      if (p.part == part) p.measured_ms += ms;
  };
  const double n = static_cast<double>(a.ranks.size());
  for (const rank_metrics& r : a.ranks) {
    const double per = 1.0 / (n * static_cast<double>(std::max<std::size_t>(1, r.steps.size())));
    add("compute", r.t.compute_ms * per);
    for (const auto& [dim, p] : r.by_dim)
      add((dim == "cp+dp" ? "dp" : dim) + " exposed", p.exposed_ms * per);
    const auto bubble = r.causes.ms.find("bubble");
    if (bubble != r.causes.ms.end()) add("bubble", bubble->second * per);
  }
  return parts;
}

std::string format_prediction(const std::vector<model_part>& parts,
                              const std::string& model_label) {
  std::string out = "\nMEASURED (the traces, per step, mean per rank) against PREDICTED (" +
                    model_label.substr(0, 120) + ")\n";
  out += "part               measured_ms  predicted_ms  deviation\n";
  for (const model_part& p : parts) {
    char buf[160];
    if (p.predicted_ms > 0)
      std::snprintf(buf, sizeof buf, "%-18s %11.3f %13.3f  %+8.1f%%\n", p.part.c_str(),
                    p.measured_ms, p.predicted_ms,
                    100.0 * (p.measured_ms - p.predicted_ms) / p.predicted_ms);
    else
      std::snprintf(buf, sizeof buf, "%-18s %11.3f %13.3f  %9s\n", p.part.c_str(), p.measured_ms,
                    p.predicted_ms, "-");
    out += buf;
  }
  return out;
}

ordered_json prediction_to_json(const std::vector<model_part>& parts, const std::string& model,
                                const std::string& gpu) {
  ordered_json rows = ordered_json::array();
  for (const model_part& p : parts) {
    ordered_json r;
    r["part"] = p.part;
    r["measured_ms"] = std::round(p.measured_ms * 1000.0) / 1000.0;
    r["predicted_ms"] = std::round(p.predicted_ms * 1000.0) / 1000.0;
    r["deviation_pct"] =
        p.predicted_ms > 0
            ? ordered_json(std::round(1000.0 * (p.measured_ms - p.predicted_ms) / p.predicted_ms) /
                           10.0)
            : ordered_json(nullptr);
    rows.push_back(r);
  }
  return ordered_json{{"model", model}, {"gpu", gpu}, {"simulated", true}, {"parts", rows}};
}

}  // namespace ob::trace
