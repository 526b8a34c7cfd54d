#include "report/history.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "base/units.hpp"
#include "report/compare.hpp"

namespace ob {
namespace {
namespace fs = std::filesystem;

// Markdown code; appended, not concatenated: GCC 12 misreads `"x" + std::string` here
// (-Wstringop-overflow).
std::string quoted(const std::string& s) {
  std::string out = "`";
  out += s;
  out += '`';
  return out;
}

// env.sim_model of a simulated result ("sim-v2.1"); "" for a measured one or an older file.
std::string sim_model_of(const result_doc& d) {
  if (!d.simulated()) return "";
  auto it = d.env.find("sim_model");
  return it != d.env.end() && it->is_string() ? it->get<std::string>() : "(not recorded)";
}

bool model_changed(const trend_point& prev, const trend_point& now) {
  return prev.doc.simulated() && now.doc.simulated() &&
         sim_model_of(prev.doc) != sim_model_of(now.doc);
}

std::string verdicts_against(const trend_point& prev, const trend_point& now) {
  const compare_outcome c = compare_results(prev.doc, now.doc, 5.0);
  std::map<std::string, int> counts;
  for (const compare_row& r : c.rows) ++counts[r.verdict];
  std::string out;
  for (const char* v : {"SLOWER", "WRONG", "FASTER", "SAME", "NEW", "MISSING"})
    if (counts[v]) out += (out.empty() ? "" : ", ") + std::to_string(counts[v]) + " " + v;
  if (out.empty()) out = "-";
  if (model_changed(prev, now))
    out += " (model " + sim_model_of(prev.doc) + " → " + sim_model_of(now.doc) + ")";
  return out;
}

}  // namespace

std::vector<std::string> history_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".json") out.push_back(e.path().string());
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return fs::path(a).filename() < fs::path(b).filename();
  });
  return out;
}

std::vector<trend_point> load_trend(const std::vector<std::string>& paths) {
  std::vector<trend_point> out;
  for (const std::string& p : paths) {
    trend_point t{fs::path(p).stem().string(), p, load_result(p), std::nullopt};
    // No cases: nothing to recommend, whatever the file stored.
    if (!t.doc.cases.empty()) t.rec = t.doc.rec ? t.doc.rec : recommend(t.doc);
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<std::string> trend_warnings(const std::vector<trend_point>& points) {
  std::vector<std::string> out;
  for (std::size_t i = 1; i < points.size(); ++i)
    if (model_changed(points[i - 1], points[i]))
      out.push_back("simulator model differs: " + points[i - 1].label + " is " +
                    sim_model_of(points[i - 1].doc) + ", " + points[i].label + " is " +
                    sim_model_of(points[i].doc) +
                    "; the change between them is partly the model's, not a performance change");
  return out;
}

std::vector<std::string> trend_header() {
  return {"result",
          "backend",
          "best case",
          "best ms",
          "default ms",
          "no overlap ms",
          "against the previous (±5 %)"};
}

std::vector<std::vector<std::string>> trend_rows(const std::vector<trend_point>& points) {
  std::vector<std::vector<std::string>> rows;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const trend_point& p = points[i];
    const std::string backend = p.doc.backend() + (p.doc.simulated() ? " (SIMULATED)" : "");
    if (!p.rec) {
      rows.push_back({p.label, backend, "-", "-", "-", "-", "-"});
      continue;
    }
    const recommendation& r = *p.rec;
    rows.push_back({p.label, backend, quoted(short_case_name(p.doc, r.best_case)),
                    format_fixed(r.best_ms, 3), format_fixed(r.default_ms, 3),
                    r.none_ms ? format_fixed(*r.none_ms, 3) : "-",
                    i == 0 ? "-" : verdicts_against(points[i - 1], p)});
  }
  return rows;
}

}  // namespace ob
