#include <filesystem>
#include <iostream>

#include "base/error.hpp"
#include "cli/command.hpp"
#include "cli/flag_checks.hpp"
#include "cli/output_paths.hpp"
#include "report/report.hpp"
#include "results/document.hpp"
#include "results/gbench.hpp"
#include "results/result.hpp"
#include "results/step_result.hpp"

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

}  // namespace

std::unique_ptr<command> make_report_command() { return std::make_unique<report_command>(); }

}  // namespace ob::cli
