#include <filesystem>
#include <iostream>

#include "base/error.hpp"
#include "base/json_util.hpp"
#include "cli/command.hpp"
#include "cli/flag_checks.hpp"
#include "cli/output_paths.hpp"
#include "report/report.hpp"
#include "report/report_plots.hpp"
#include "results/document.hpp"
#include "results/gbench.hpp"
#include "results/result.hpp"
#include "results/step_result.hpp"
#include "trace/analysis_compare.hpp"
#include "trace/analyze.hpp"

namespace ob::cli {
namespace {

// report RESULT.json [MORE.json ...] --out DIR: report.md (+ --html) and its pictures.
class report_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand(
        "report", "write DIR/report.md with its pictures: the answer, why, and the trend");
    app->add_option("results", req_.results,
                    "result JSON files: the report's subject first, then earlier results (oldest "
                    "first) for the trend; or one step JSON");
    app->add_option("--out", req_.out_dir, "folder for report.md and its PNGs")->required();
    app->add_flag("--html", req_.html, "also write one self-contained report.html");
    app->add_flag("--trend", req_.trend,
                  "put every result file of --history first on the trend (regression tracking)");
    history_ = app->add_option("--history", req_.history_dir, "the history folder --trend reads")
                   ->capture_default_str();
    app->add_option("--gbench-json", gbench_path_,
                    "also write the subject (result or step) in Google Benchmark's JSON format")
        ->check(not_empty());
    return app;
  }

  int run(const process_args&) override {
    check_paths();
    const report_outcome o = write_report(req_);
    for (const std::string& n : o.notes) std::cerr << "overlap-bench: report: " << n << "\n";
    for (const std::string& p : o.written) std::cout << p << "\n";
    if (!gbench_path_.empty() && !req_.results.empty()) {
      const std::string& subject = req_.results.front();
      const ordered_json doc = read_document(subject);
      if (schema_of(doc) == step_schema_v1)
        write_gbench_json(gbench_path_, step_from_json(doc, subject));
      else
        write_gbench_json(gbench_path_, result_from_json(doc, subject));
      std::cout << gbench_path_ << "\n";
    }
    return 0;
  }

 private:
  // Before anything is written: a --history that is not a folder (also without --trend, where
  // it would be ignored), --gbench-json against the inputs, and neither --gbench-json nor an
  // input among the files the report writes into --out.
  void check_paths() const {
    // With --trend, write_report says the same.
    if (history_->count() > 0 && !req_.trend && !std::filesystem::is_directory(req_.history_dir))
      throw config_error("--history " + req_.history_dir + ": no such folder");
    std::vector<path_flag> inputs;
    for (const std::string& r : req_.results) inputs.push_back({"RESULT", r});
    check_output_paths({{"--gbench-json", gbench_path_}}, inputs);
    if (const std::string name = written_by_report(gbench_path_); !name.empty())
      throw config_error("--gbench-json " + gbench_path_ + ": the report writes " + name +
                         " in --out " + req_.out_dir + "; give another file");
    for (const std::string& r : req_.results)
      if (const std::string name = written_by_report(r); !name.empty())
        throw config_error("--out " + req_.out_dir + ": the report writes " + name +
                           " there, which is the input " + r +
                           "; an output never overwrites "
                           "an input");
  }

  // The name of `path` when it is one of the files the report writes into --out (report.md,
  // report.html, a picture), else "".
  std::string written_by_report(const std::string& path) const {
    namespace fs = std::filesystem;
    if (path.empty()) return "";
    const fs::path p = fs::weakly_canonical(fs::absolute(path));
    const std::string name = p.filename().string();
    const bool report_file =
        name == "report.md" || name == "report.html" || p.extension() == ".png";
    return report_file && p.parent_path() == fs::weakly_canonical(fs::absolute(req_.out_dir)) ? name
                                                                                              : "";
  }

  report_request req_;
  std::string gbench_path_;
  CLI::Option* history_ = nullptr;
};

// analyze FILE|DIR... [--json F] [--layout tp=..] [--steps K]: exposed communication in real
// profiles (docs/ANALYZE.md). It sits here, beside `report`, as the other reader of what was
// measured; src/cli holds its 30 files (docs/ARCHITECTURE.md §1).
class analyze_command final : public command {
 public:
  CLI::App* attach(CLI::App& parent) override {
    auto* app = parent.add_subcommand(
        "analyze",
        "exposed communication per rank, kind, dimension and step, from PyTorch "
        "profiler (Kineto) traces or Nsight Systems SQLite exports");
    app->add_option("traces", req_.inputs, "trace files (.json, .json.gz, .sqlite) or folders")
        ->required();
    app->add_option("--json", json_, "write the analysis/v1 document here")->check(not_empty());
    app->add_option("--layout", req_.layout,
                    "tp=N,cp=N,pp=N[,dp=N][,ep=N]: split communication by dimension (Megatron "
                    "rank order)");
    app->add_option("--steps", req_.last_steps, "measure only the last K steps of each rank")
        ->check(CLI::PositiveNumber);
    app->add_option("--step-marker", req_.step_marker,
                    "steps are the ranges whose name starts with NAME (default: ProfilerStep#N, "
                    "NVTX 'iteration N' or 'step N')")
        ->check(not_empty());
    app->add_option("--report", report_dir_, "also write DIR/report.md, analysis.json and PNGs")
        ->check(not_empty());
    app->add_option("--expect", expect_,
                    "an earlier analysis JSON: exit 1 when exposed communication (in all, per "
                    "dimension or kind) or the median step grew beyond --tolerance")
        ->check(CLI::ExistingFile);
    app->add_option("--tolerance", tolerance_, "percent growth that counts against --expect")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    return app;
  }

  int run(const process_args&) override {
    std::vector<path_flag> inputs{{"--expect", expect_}};
    for (const std::string& f : trace::expand_inputs(req_.inputs)) inputs.push_back({"TRACE", f});
    const std::string md = report_dir_.empty() ? "" : report_dir_ + "/report.md";
    const std::string doc_path = report_dir_.empty() ? "" : report_dir_ + "/analysis.json";
    check_output_paths({{"--json", json_}, {"--report", md}, {"--report", doc_path}}, inputs);
    // Read first, so that a baseline of another kind stops before the traces are read.
    const ordered_json baseline = expect_.empty() ? ordered_json() : read_document(expect_);
    if (!expect_.empty() && schema_of(baseline) != trace::analysis_schema_v1)
      throw config_error("--expect " + expect_ + ": " + describe_schema(schema_of(baseline)) +
                         "; analyze compares with an analysis document");
    const trace::analysis a = trace::analyze_traces(req_);
    std::cout << trace::format_analysis(a) << std::flush;
    const ordered_json doc = trace::analysis_to_json(a);
    if (!json_.empty()) write_file_atomic(json_, dump_json(doc, 2) + "\n");
    if (!report_dir_.empty()) write_analysis_report(a, doc, doc_path, md);
    if (expect_.empty()) return 0;
    const trace::analysis_comparison c =
        trace::compare_analyses(baseline, expect_, doc, "this analysis", tolerance_);
    std::cout << "\n" << trace::format_analysis_comparison(c, expect_, "this analysis");
    std::cout << (c.regression() ? "expect: FAIL\n" : "expect: PASS\n") << std::flush;
    return c.regression() ? static_cast<int>(exit_code::regression) : 0;
  }

 private:
  // The document, then the pictures drawn from it, then report.md naming them.
  void write_analysis_report(const trace::analysis& a, const ordered_json& doc,
                             const std::string& doc_path, const std::string& md) const {
    write_file_atomic(doc_path, dump_json(doc, 2) + "\n");
    const plot_outcome p =
        run_plot_script("analyze_plots.py", {"--out", report_dir_, "--analysis", doc_path});
    std::vector<std::pair<std::string, std::string>> figures;
    for (const figure& f : p.figures) figures.emplace_back(f.file, f.caption);
    write_file_atomic(md, trace::analysis_markdown(a, figures, p.problem));
    if (!p.problem.empty()) std::cerr << "overlap-bench: analyze: " << p.problem << "\n";
    std::cout << md << "\n";
  }

  trace::analyze_request req_;
  std::string json_, expect_, report_dir_;
  double tolerance_ = 5;
};

}  // namespace

std::unique_ptr<command> make_report_command() { return std::make_unique<report_command>(); }
std::unique_ptr<command> make_analyze_command() { return std::make_unique<analyze_command>(); }

}  // namespace ob::cli
