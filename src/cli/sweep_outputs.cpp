#include "cli/sweep_outputs.hpp"

#include <signal.h>

#include <filesystem>
#include <iostream>

#include "base/atomic_file.hpp"

namespace ob::cli {
void check_output_paths(const common_flags& f, std::vector<path_flag> inputs) {
  inputs.push_back({"--expect", f.answers.expect_path});
  check_output_paths({{"--json", f.json_path},
                      {"--csv", f.csv_path},
                      {"--trace", f.trace_path},
                      {"--gbench-json", f.answers.gbench_path}},
                     inputs, f.json_path);
  if (f.resume && f.json_path.empty())
    throw config_error("--resume: needs --json FILE (the journal is FILE.journal)");
}

std::vector<std::string> output_files(const common_flags& f) {
  return {f.json_path, f.csv_path, f.trace_path, f.answers.gbench_path};
}

sweep_journal::case_reader collect_cases(std::vector<case_record>& out) {
  return [&out](const ordered_json& c, const std::string& file, const std::string& where) {
    out.push_back(case_record_from_json(c, file, where));
  };
}

journal_keeper::journal_keeper(const common_flags& f, const std::string& fingerprint,
                               std::size_t cases, const sweep_journal::case_reader& read) {
  if (f.json_path.empty()) return;
  const std::string path = journal_path_for(f.json_path);
  if (f.resume && std::filesystem::exists(path)) {
    journal_.emplace(sweep_journal::resume(path, fingerprint, read));
    resumed_ = true;
    std::cerr << "overlap-bench: resuming " << path << ": " << journal_->size() << " of " << cases
              << " cases already finished\n";
    return;
  }
  // An hour of measurements is not replaced by a forgotten flag.
  if (std::filesystem::exists(path))
    throw config_error("--json " + f.json_path + ": " + path +
                       " holds the cases of an unfinished sweep; pass --resume to continue it, "
                       "or delete it to start over");
  if (f.resume) std::cerr << "overlap-bench: --resume: no " << path << "; starting afresh\n";
  journal_.emplace(sweep_journal::start(path, fingerprint));
}

void journal_keeper::finish(bool stopped) {
  if (journal_ && !stopped) journal_->remove();
}

void journal_keeper::after_failure(const error& e) {
  if (!journal_) return;
  // A config error means this sweep cannot run as asked; an empty journal holds nothing to keep.
  if ((e.code() == exit_code::usage || journal_->size() == 0) && !resumed_) {
    journal_->remove();
    return;
  }
  if (journal_->size() > 0)
    std::cerr << "overlap-bench: " << journal_->size() << " finished case(s) are kept in "
              << journal_->path() << "; run again with --resume to measure only the rest\n";
}

int stopped_exit(int signal, std::size_t done, std::size_t total, const common_flags& f,
                 const communicator& comm) {
  if (comm.is_root())
    std::cerr << "overlap-bench: stopped by " << (signal == SIGINT ? "SIGINT" : "SIGTERM")
              << " after " << done << " of " << total << " cases"
              << (f.json_path.empty()
                      ? std::string()
                      : "; " + f.json_path + " holds them; --resume measures the rest")
              << "\n";
  return 128 + signal;
}

sweep_outputs::sweep_outputs(const common_flags& f, const sweep_request& req, const executor& exec,
                             sweep_hooks& hooks, const std::vector<path_flag>& inputs)
    : flags_(f) {
  check_output_paths(f, inputs);
  journal_.emplace(f, sweep_fingerprint(req, exec.backend()), req.cases.size(),
                   collect_cases(hooks.finished));
  if (!f.json_path.empty())
    hooks.on_case = [this](const case_record& rec) { journal_->append(to_json(rec)); };
}

int sweep_outputs::emit(const sweep_result& out, const communicator& comm) {
  const int rc = cli::emit(out.doc, flags_, comm, out.trace);
  journal_->finish(out.stopped != 0);
  return rc;
}

}  // namespace ob::cli
