#include "report/report.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "base/error.hpp"
#include "report/history.hpp"
#include "report/report_content.hpp"
#include "report/report_plots.hpp"
#include "report/step_report.hpp"
#include "results/document.hpp"

namespace ob {
namespace {
namespace fs = std::filesystem;

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// History first (by date), then the earlier results given, then the subject. A history file
// with the same bytes as a given result is that result (scripts/run.sh copies each run there).
std::vector<std::string> trend_paths(const report_request& req) {
  std::vector<std::string> given(req.results.begin(), req.results.end());
  std::vector<std::string> out;
  if (req.trend) {
    std::vector<std::string> contents;
    for (const std::string& g : given) contents.push_back(file_bytes(g));
    for (const std::string& h : history_files(req.history_dir))
      if (std::find(contents.begin(), contents.end(), file_bytes(h)) == contents.end())
        out.push_back(h);
  }
  for (std::size_t i = 1; i < given.size(); ++i) out.push_back(given[i]);
  if (!given.empty()) out.push_back(given.front());
  return out;
}

void write_text(const std::string& path, const std::string& text, report_outcome& o) {
  write_file_atomic(path, text);
  o.written.push_back(path);
}

void make_folder(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw config_error("--out " + dir + ": cannot create the folder: " + ec.message());
}

// Draws the pictures of `subject` (and of the trend), builds the document around them and writes
// report.md (and report.html).
report_outcome draw_and_write(const report_request& r, const std::string& subject,
                              const std::string& label,
                              const std::vector<std::pair<std::string, std::string>>& trend,
                              const std::function<report_doc(const plot_outcome&)>& build) {
  make_folder(r.out_dir);
  const plot_outcome plots = draw_report_figures(r.out_dir, subject, trend);
  report_outcome o;
  if (!plots.problem.empty()) o.notes.push_back("no pictures: " + plots.problem);
  for (const figure& f : plots.figures)
    o.written.push_back((fs::path(r.out_dir) / f.file).string());
  const report_doc doc = build(plots);
  write_text((fs::path(r.out_dir) / "report.md").string(), doc.markdown(), o);
  if (r.html)
    write_text((fs::path(r.out_dir) / "report.html").string(),
               doc.html(r.out_dir, "overlap-bench report: " + label), o);
  return o;
}

// A step document is its own report: no history or trend (they hold layer results).
report_outcome write_step_report(const report_request& r, const ordered_json& subject) {
  const std::string& path = r.results.front();
  if (r.results.size() > 1 || r.trend)
    throw config_error("report: " + path +
                       " is a step document; earlier results and --trend read layer/pair results "
                       "(give the step document alone)");
  const step_doc d = step_from_json(subject, path);
  return draw_and_write(
      r, path, fs::path(path).stem().string(), {},
      [&](const plot_outcome& plots) { return build_step_report(path, d, plots); });
}

}  // namespace

report_outcome write_report(const report_request& req) {
  report_request r = req;
  // A trend that silently left out a mistyped history folder would look like a short history.
  if (r.trend && !fs::is_directory(r.history_dir))
    throw config_error("--history " + r.history_dir +
                       ": no such folder, so --trend has no result files from it");
  if (r.results.empty() && r.trend) {
    const std::vector<std::string> h = history_files(r.history_dir);
    if (h.empty()) throw config_error("report --trend: no result files in " + r.history_dir);
    r.results.push_back(h.back());
  }
  if (r.results.empty()) throw config_error("report: give a result file (or --trend)");
  const ordered_json first = read_document(r.results.front());
  if (schema_of(first) == step_schema_v1) return write_step_report(r, first);
  const std::vector<trend_point> trend = load_trend(trend_paths(r));
  const trend_point& subject = trend.back();
  std::vector<std::pair<std::string, std::string>> trend_args;
  if (trend.size() >= 2)
    for (const trend_point& t : trend) trend_args.emplace_back(t.label, t.path);
  report_outcome o = draw_and_write(
      r, subject.path, subject.label, trend_args,
      [&](const plot_outcome& plots) { return build_report(subject, trend, plots); });
  for (const std::string& w : trend_warnings(trend)) o.notes.push_back("warning: " + w);
  return o;
}

}  // namespace ob
